// The elementwise losses (mean squared and absolute error, Huber, binary
// crossentropy): the CPU kernel sets compile them once per instruction set
// (gemm_kernels.cpp), and loss_and_gradient() calls them through
// elementwise_loss() (gemm.hpp). A step works in double on eight values,
// which R's flags leave to SSE2's two lanes (W1's training step was 10%
// faster with the AVX-512 build; bench/NOTES.md).
//
// Every template here takes first a type `Set` that each kernel object
// defines with internal linkage: their instances then have internal
// linkage too, so the linker cannot give one set's calls another set's code
// (tests/cpp's check-kernel-symbols). For the same reason, the inline
// templates of the engine's other headers that it calls take `Set` too.
#pragma once

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "convert.hpp"
#include "loss.hpp"

namespace lcnn {
namespace elementwise {

// One value's term of an elementwise loss (before the mean over the last
// axis) and its derivative by the prediction (or logit).
struct Term {
  double value, slope;
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
// Value i of a run goes to partial sum i % kLanes, the sums added in order
// at the end, and a whole step of kLanes values loads its operands first:
// the compiler then computes the step's terms in vector registers where
// term_of allows (W1's training step 6% faster than one value at a time;
// bench/NOTES.md). The split depends only on the block, not on the thread
// count.
template <typename Set, bool kGradient, typename T, typename X, typename TermOf>
double sweep(TermOf term_of, const T* input, index_t batch, index_t size, const X* target,
             const T* weights, index_t first, index_t count, T* g) {
  constexpr index_t kLanes = 8;
  const double scale = 1.0 / static_cast<double>(size);
  const T* p = input;
  double sums[kLanes] = {};
  // Value v (of sample `sample`, target t) into sum j.
  auto add = [&](index_t v, double t, index_t sample, index_t j) {
    const double w = weights ? static_cast<double>(weights[sample]) : 1.0;
    const Term term = term_of(static_cast<double>(p[v]), t);
    sums[j] += w * term.value;
    if constexpr (kGradient) g[v] = static_cast<T>(w * term.slope * scale);
  };
  // Values [v, v + length) of one run, from sample `sample` on, with their
  // targets from t on; value v + i into sum i % kLanes.
  auto sweep_run = [&](index_t v, index_t sample, index_t length, const T* t) {
    index_t i = 0;
    // Whole steps of kLanes values, all loaded before any gradient is
    // stored (grad may be the target).
    for (; i + kLanes <= length; i += kLanes) {
      double pv[kLanes], tv[kLanes], wv[kLanes];
#pragma GCC unroll 8
      for (index_t j = 0; j < kLanes; ++j) {
        pv[j] = static_cast<double>(p[v + i + j]);
        tv[j] = static_cast<double>(t[i + j]);
        wv[j] = weights ? static_cast<double>(weights[sample + i + j]) : 1.0;
      }
#pragma GCC unroll 8
      for (index_t j = 0; j < kLanes; ++j) {
        const Term term = term_of(pv[j], tv[j]);
        sums[j] += wv[j] * term.value;
        if constexpr (kGradient) g[v + i + j] = static_cast<T>(wv[j] * term.slope * scale);
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
  for (double sum : sums) total += sum;
  return total;
}

// The elementwise losses' terms, each swept in a loop of its own (one
// without the gradient's stores when grad is null).
template <typename Set, typename T, typename X>
double loss_block(const LossSpec& loss, bool logits, const T* input, index_t batch,
                  index_t size, const X* target, const T* weights, index_t first, index_t count,
                  T* grad) {
  auto run = [&](auto term_of) {
    return grad != nullptr ? sweep<Set, true>(term_of, input, batch, size, target, weights,
                                              first, count, grad)
                           : sweep<Set, false>(term_of, input, batch, size, target, weights,
                                               first, count, static_cast<T*>(nullptr));
  };
  switch (loss.kind) {
    case LossKind::mse:
      return run([](double p, double t) {
        const double e = p - t;
        return Term{e * e, 2 * e};
      });
    case LossKind::mae:
      return run([](double p, double t) {
        return Term{std::abs(p - t), p > t ? 1.0 : p < t ? -1.0 : 0.0};
      });
    case LossKind::huber:
      return run([delta = loss.delta](double p, double t) {
        const double e = p - t, a = std::abs(e);
        if (a <= delta) return Term{0.5 * e * e, e};
        return Term{delta * (a - 0.5 * delta), delta * (e > 0 ? 1.0 : -1.0)};
      });
    case LossKind::binary_crossentropy:
      if (logits) {
        return run([](double z, double t) {
          return Term{std::max(z, 0.0) - z * t + std::log1p(std::exp(-std::abs(z))),
                      sigmoid<Set>(z) - t};
        });
      }
      // Keras clips to [eps, 1 - eps] and adds eps inside the logs.
      return run([](double p, double t) {
        const double q = std::min(std::max(p, kLossEpsilon), 1 - kLossEpsilon);
        const bool inside = p > kLossEpsilon && p < 1 - kLossEpsilon;
        return Term{-(t * std::log(q + kLossEpsilon) + (1 - t) * std::log(1 - q + kLossEpsilon)),
                    inside ? -(t / (q + kLossEpsilon) - (1 - t) / (1 - q + kLossEpsilon)) : 0.0};
      });
    case LossKind::categorical_crossentropy:
    case LossKind::sparse_categorical_crossentropy:
      break;
  }
  return 0;  // never reached: elementwise_loss() refuses the categorical losses
}

}  // namespace elementwise
}  // namespace lcnn
