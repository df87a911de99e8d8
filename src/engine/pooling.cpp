#include "pooling.hpp"

#include <algorithm>
#include <stdexcept>

#include "parallel.hpp"

namespace lcnn {

namespace {

// Samples per parallel block: long enough runs for the vectorized inner
// loops, and several blocks per channel for large batches.
constexpr index_t kSampleBlock = 256;

}  // namespace

PoolMode parse_pool_mode(const std::string& name) {
  if (name == "max") return PoolMode::max;
  if (name == "average") return PoolMode::average;
  throw std::invalid_argument("unknown pooling mode '" + name + "'");
}

MaxTies parse_max_ties(const std::string& name) {
  if (name == "first") return MaxTies::first;
  if (name == "split") return MaxTies::split;
  throw std::invalid_argument("unknown rule for ties '" + name + "'");
}

template <typename T>
Pooling<T>::Pooling(const LocalGeometry& geometry, PoolMode mode, const Shape& output,
                    MaxTies ties)
    : geometry_(geometry), mode_(mode), output_(output), ties_(ties) {
  geometry_.validate();
  if (geometry_.filters != geometry_.channels) {
    throw std::invalid_argument("pooling keeps the channels: filters must equal channels");
  }
  const bool own_shape = output_ == geometry_.output_shape();
  const bool channels_only = geometry_.positions() == 1 && output_ == Shape{{geometry_.channels}};
  if (!own_shape && !channels_only) {
    throw std::invalid_argument("pooling to " + geometry_.output_shape().to_string() +
                                " cannot give output " + output_.to_string());
  }
}

template <typename T>
typename Pooling<T>::Strides Pooling<T>::strides(index_t rows, index_t cols) const {
  if (geometry_.format == DataFormat::channels_last) return {1, rows, rows * cols};
  const index_t C = geometry_.channels;
  return {C, C * rows, 1};
}

template <typename T>
template <typename Body>
void Pooling<T>::for_each_slice(index_t batch, int threads, Body body) const {
  const index_t blocks = (batch + kSampleBlock - 1) / kSampleBlock;
  for_each_block(geometry_.channels * blocks, 1, threads, [&](index_t unit, index_t) {
    const index_t first = (unit % blocks) * kSampleBlock;
    body(unit / blocks, first, std::min(kSampleBlock, batch - first));
  });
}

template <typename T>
template <typename Visit>
void Pooling<T>::for_each_tap(index_t r, index_t q, index_t c, const Strides& in,
                              Visit visit) const {
  const AxisWindow& rows = geometry_.rows;
  const AxisWindow& cols = geometry_.cols;
  for (index_t i = rows.tap_begin(r); i < rows.tap_end(r); ++i) {
    for (index_t j = cols.tap_begin(q); j < cols.tap_end(q); ++j) {
      visit((rows.first(r) + i) * in.row + (cols.first(q) + j) * in.col + c * in.channel);
    }
  }
}

// Per slice (channel c, samples [b0, b0 + nb)) and output position: the
// window's taps in row-major order, each a run of nb contiguous samples.
template <typename T>
void Pooling<T>::forward(const Tensor<T>& input, Tensor<T>& output, const Context& ctx) {
  const LocalGeometry& g = geometry_;
  if (input.shape != g.input_shape().with_batch(input.batch())) {
    throw std::invalid_argument("pooling layer expected input " + g.input_shape().to_string() +
                                " per sample, got " + input.shape.to_string());
  }
  const index_t B = input.batch();
  output.resize(output_.with_batch(B));
  const Strides in = strides(g.rows.input, g.cols.input);
  const Strides out = strides(g.rows.output, g.cols.output);
  const T* x = input.data.data();
  T* y = output.data.data();
  for_each_slice(B, ctx.threads, [&](index_t c, index_t b0, index_t nb) {
    for (index_t r = 0; r < g.rows.output; ++r) {
      for (index_t q = 0; q < g.cols.output; ++q) {
        T* pooled = y + B * (r * out.row + q * out.col + c * out.channel) + b0;
        bool first_tap = true;
        for_each_tap(r, q, c, in, [&](index_t feature) {
          const T* tap = x + B * feature + b0;
          if (first_tap) {
            std::copy(tap, tap + nb, pooled);
          } else if (mode_ == PoolMode::max) {
            for (index_t b = 0; b < nb; ++b) pooled[b] = std::max(pooled[b], tap[b]);
          } else {
            for (index_t b = 0; b < nb; ++b) pooled[b] += tap[b];
          }
          first_tap = false;
        });
        if (mode_ == PoolMode::average) {
          const T scale = T(1) / static_cast<T>(g.rows.connected(r) * g.cols.connected(q));
          for (index_t b = 0; b < nb; ++b) pooled[b] *= scale;
        }
      }
    }
  });
}

// Each slice owns its part of the input gradient and adds the outputs'
// contributions in a fixed order.
template <typename T>
void Pooling<T>::backward(const Tensor<T>& input, const Tensor<T>&, const Tensor<T>& grad_output,
                          Tensor<T>* grad_input, const Context& ctx, bool) {
  if (grad_input == nullptr) return;
  const LocalGeometry& g = geometry_;
  const index_t B = input.batch();
  grad_input->resize(input.shape);
  const Strides in = strides(g.rows.input, g.cols.input);
  const Strides out = strides(g.rows.output, g.cols.output);
  const T* x = input.data.data();
  const T* dy = grad_output.data.data();
  T* dx = grad_input->data.data();
  for_each_slice(B, ctx.threads, [&](index_t c, index_t b0, index_t nb) {
    for (index_t ir = 0; ir < g.rows.input; ++ir) {
      for (index_t ic = 0; ic < g.cols.input; ++ic) {
        T* slice = dx + B * (ir * in.row + ic * in.col + c * in.channel) + b0;
        std::fill(slice, slice + nb, T(0));
      }
    }
    // For max, per sample: the maximum, the feature of its first tap and
    // the number of taps that hold it.
    const std::size_t max_slots = mode_ == PoolMode::max ? static_cast<std::size_t>(nb) : 0;
    std::vector<T> best(max_slots);
    std::vector<index_t> best_at(max_slots), holders(max_slots);
    for (index_t r = 0; r < g.rows.output; ++r) {
      for (index_t q = 0; q < g.cols.output; ++q) {
        const T* grad = dy + B * (r * out.row + q * out.col + c * out.channel) + b0;
        if (mode_ == PoolMode::average) {
          const T scale = T(1) / static_cast<T>(g.rows.connected(r) * g.cols.connected(q));
          for_each_tap(r, q, c, in, [&](index_t feature) {
            T* grad_tap = dx + B * feature + b0;
            for (index_t b = 0; b < nb; ++b) grad_tap[b] += grad[b] * scale;
          });
          continue;
        }
        bool first_tap = true;
        for_each_tap(r, q, c, in, [&](index_t feature) {
          const T* tap = x + B * feature + b0;
          for (index_t b = 0; b < nb; ++b) {
            if (first_tap || tap[b] > best[b]) {
              best[b] = tap[b];
              best_at[b] = feature;
              holders[b] = 1;
            } else if (tap[b] == best[b]) {
              ++holders[b];
            }
          }
          first_tap = false;
        });
        if (ties_ == MaxTies::first) {
          for (index_t b = 0; b < nb; ++b) dx[B * best_at[b] + b0 + b] += grad[b];
          continue;
        }
        for_each_tap(r, q, c, in, [&](index_t feature) {
          const T* tap = x + B * feature + b0;
          T* grad_tap = dx + B * feature + b0;
          for (index_t b = 0; b < nb; ++b) {
            if (tap[b] == best[b]) grad_tap[b] += grad[b] / static_cast<T>(holders[b]);
          }
        });
      }
    }
  });
}

template class Pooling<float>;
template class Pooling<double>;

}  // namespace lcnn
