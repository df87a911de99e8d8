// The elementwise losses (mean squared and absolute error, Huber, binary
// crossentropy): the CPU kernel sets compile them once per instruction set
// (gemm_kernels.cpp), and loss_and_gradient() calls them through
// elementwise_loss() (gemm.hpp), so that their steps, in double, run on
// the CPU's widest vectors (W1's training step 13% faster with AVX-512
// than with R's flags; bench/NOTES.md).
//
// Every template here takes first a type `Set` that each kernel object
// defines with internal linkage: their instances then have internal
// linkage too, so the linker cannot give one set's calls another set's code
// (tests/cpp's check-kernel-symbols). For the same reason, the inline
// templates of the engine's other headers that it calls take `Set` too.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "convert.hpp"
#include "loss.hpp"

namespace lcnn {
namespace elementwise {

// The term of a value of an elementwise loss (before the mean over the
// last axis) and its derivative by the prediction (or logit): of one
// value (V double) or of a step's values (V a vector of doubles).
template <typename V>
struct Term {
  V value, slope;
};

// A vector of `Bytes` bytes of T (GCC's vector extensions).
template <typename T, int Bytes>
struct VectorOf {
  typedef T type __attribute__((vector_size(Bytes)));
};

template <typename Set>
double sigmoid(double z) {
  return z >= 0 ? 1.0 / (1.0 + std::exp(-z)) : std::exp(z) / (1.0 + std::exp(z));
}

// Values [first, first + count) of an elementwise loss whose term of a
// prediction p and target t is term_of(p, t); `input` holds `size` values,
// `batch` samples innermost. Each value's term depends on it alone, so the
// values are swept in their memory order, whatever their row or channel;
// value v belongs to sample v % batch, so they come in runs of consecutive
// samples. Returns the block's weighted sum of terms; with kGradient,
// writes the gradient to g, which may hold the targets: each is read before
// it is written.
//
// A step is one vector of doubles of the set's width, Set::kVectorBytes
// (kLanes values: 8 with AVX-512, 4 with AVX2, 2 with SSE2), loaded,
// computed and stored whole; value i of a run goes to partial sum
// i % kLanes, the sums added in order at the end. With kVector, term_of
// takes whole steps (its arithmetic and selections work on either type);
// else it takes the step's values one at a time (binary crossentropy's
// logarithms and exponentials). Written as vectors, the step runs in the
// set's registers: GCC's -O2 vectorised eight scalar terms for AVX-512
// only, and vectors wider than the set's for none (bench/NOTES.md). The
// split depends only on the block, not on the thread count.
template <typename Set, bool kGradient, bool kVector, typename T, typename X, typename TermOf>
double sweep(TermOf term_of, const T* input, index_t batch, index_t size, const X* target,
             const T* weights, index_t first, index_t count, T* g) {
  typedef typename VectorOf<double, Set::kVectorBytes>::type Step;
  constexpr index_t kLanes = Set::kVectorBytes / sizeof(double);
  typedef typename VectorOf<T, kLanes * sizeof(T)>::type Values;
  const double scale = 1.0 / static_cast<double>(size);
  const T* p = input;
  Step sums = {};
  auto load = [](const T* from) {
    Values values;
    std::memcpy(&values, from, sizeof values);
    return __builtin_convertvector(values, Step);
  };
  // Value v (of sample `sample`, target t) into sum j.
  auto add = [&](index_t v, double t, index_t sample, index_t j) {
    const double w = weights ? static_cast<double>(weights[sample]) : 1.0;
    const Term<double> term = term_of(static_cast<double>(p[v]), t);
    sums[j] += w * term.value;
    if constexpr (kGradient) g[v] = static_cast<T>(w * term.slope * scale);
  };
  // Values [v, v + length) of one run, from sample `sample` on, with their
  // targets from t on; value v + i into sum i % kLanes.
  auto sweep_run = [&](index_t v, index_t sample, index_t length, const T* t) {
    index_t i = 0;
    // Whole steps, all loaded before any gradient is stored (grad may be
    // the target).
    for (; i + kLanes <= length; i += kLanes) {
      const Step pv = load(p + v + i), tv = load(t + i);
      const Step wv = weights ? load(weights + sample + i) : Step{} + 1.0;
      Term<Step> term;
      if constexpr (kVector) {
        term = term_of(pv, tv);
      } else {
        for (index_t j = 0; j < kLanes; ++j) {
          const Term<double> one = term_of(pv[j], tv[j]);
          term.value[j] = one.value;
          term.slope[j] = one.slope;
        }
      }
      sums += wv * term.value;
      if constexpr (kGradient) {
        const Values gradient = __builtin_convertvector(wv * term.slope * scale, Values);
        std::memcpy(g + v + i, &gradient, sizeof gradient);
      }
    }
    for (; i < length; ++i) add(v + i, static_cast<double>(t[i]), sample + i, i % kLanes);
  };
  for (index_t v = first, end = first + count; v < end;) {
    const index_t sample = v % batch, run = std::min(batch - sample, end - v);
    const X* const t = target + v;
    if constexpr (std::is_same<X, T>::value) {
      sweep_run(v, sample, run, t);
    } else {
      // Targets of another type are rounded to T a chunk at a time first
      // (as a batch tensor of T would hold them). Rounding them inside the
      // step instead, GCC 12's -O2 gave sums that differed from a batch
      // tensor's in the last bits, and agreed at -O1 or without its SLP
      // vectoriser (bench/NOTES.md). Whole steps per chunk keep each
      // value's partial sum.
      constexpr index_t kChunk = 32 * kLanes;
      T rounded[kChunk];
      for (index_t c = 0; c < run; c += kChunk) {
        const index_t length = std::min(kChunk, run - c);
        convert_values<X, T, Set>(t + c, rounded, length);
        sweep_run(v + c, sample + c, length, rounded);
      }
    }
    v += run;
  }
  double total = 0;
  for (index_t j = 0; j < kLanes; ++j) total += sums[j];
  return total;
}

// The elementwise losses' terms, each swept in a loop of its own (one
// without the gradient's stores when grad is null). The terms of mse, mae
// and Huber are written for one value or a Step alike: comparisons give
// masks there, and `mask ? a : b` selects lane by lane.
template <typename Set, typename T, typename X>
double loss_block(const LossSpec& loss, bool logits, const T* input, index_t batch,
                  index_t size, const X* target, const T* weights, index_t first, index_t count,
                  T* grad) {
  auto run = [&](auto term_of, auto vector) {
    constexpr bool kVector = decltype(vector)::value;
    return grad != nullptr
               ? sweep<Set, true, kVector>(term_of, input, batch, size, target, weights, first,
                                           count, grad)
               : sweep<Set, false, kVector>(term_of, input, batch, size, target, weights, first,
                                            count, static_cast<T*>(nullptr));
  };
  const std::true_type vector;
  const std::false_type per_value;
  switch (loss.kind) {
    case LossKind::mse:
      return run(
          [](auto p, auto t) {
            const auto e = p - t;
            return Term<std::decay_t<decltype(e)>>{e * e, 2 * e};
          },
          vector);
    case LossKind::mae:
      return run(
          [](auto p, auto t) {
            const auto e = p - t;
            typedef std::decay_t<decltype(e)> V;
            const V zero{}, one = zero + 1.0;
            return Term<V>{e < zero ? -e : e, p > t ? one : p < t ? -one : zero};
          },
          vector);
    case LossKind::huber:
      return run(
          [delta = loss.delta](auto p, auto t) {
            const auto e = p - t;
            typedef std::decay_t<decltype(e)> V;
            const V zero{}, one = zero + 1.0, a = e < zero ? -e : e;
            const auto inside = a <= zero + delta;
            return Term<V>{inside ? V(0.5 * e * e) : V(delta * (a - 0.5 * delta)),
                           inside ? e : V(delta * (e > zero ? one : -one))};
          },
          vector);
    case LossKind::binary_crossentropy:
      if (logits) {
        return run(
            [](double z, double t) {
              return Term<double>{std::max(z, 0.0) - z * t + std::log1p(std::exp(-std::abs(z))),
                                  sigmoid<Set>(z) - t};
            },
            per_value);
      }
      // Keras clips to [eps, 1 - eps] and adds eps inside the logs.
      return run(
          [](double p, double t) {
            const double q = std::min(std::max(p, kLossEpsilon), 1 - kLossEpsilon);
            const bool inside = p > kLossEpsilon && p < 1 - kLossEpsilon;
            return Term<double>{
                -(t * std::log(q + kLossEpsilon) + (1 - t) * std::log(1 - q + kLossEpsilon)),
                inside ? -(t / (q + kLossEpsilon) - (1 - t) / (1 - q + kLossEpsilon)) : 0.0};
          },
          per_value);
    case LossKind::categorical_crossentropy:
    case LossKind::sparse_categorical_crossentropy:
      break;
  }
  return 0;  // never reached: elementwise_loss() refuses the categorical losses
}

}  // namespace elementwise
}  // namespace lcnn
