#include "batch_norm.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

#include "parallel.hpp"

namespace lcnn {

namespace {

// Each channel's values are cut into chunks of kBatchNormChunk, so that even
// a single channel is split over threads.
constexpr index_t kChunk = kBatchNormChunk;

index_t chunks_per_channel(const ChannelExtent& e) { return batch_norm_chunks(e); }

// Calls run(unit, c, offset, length) on every contiguous run of channel c's
// values within each chunk; units (channel, chunk) run in parallel, the runs
// of one unit in order.
template <typename Run>
void for_each_chunk(const ChannelExtent& e, int threads, Run run) {
  const index_t chunks = chunks_per_channel(e), n = e.per_channel();
  for_each_block(e.channels * chunks, 1, threads, [&](index_t unit, index_t) {
    const index_t c = unit / chunks;
    index_t k = (unit % chunks) * kChunk;
    const index_t end = std::min(n, k + kChunk);
    while (k < end) {
      const index_t o = k / e.inner, i = k % e.inner;
      const index_t length = std::min(e.inner - i, end - k);
      run(unit, c, i + e.inner * (c + e.channels * o), length);
      k += length;
    }
  });
}

// Per channel, the sum of term(c, offset, length) over its runs: partial
// sums per chunk, added in chunk order, so the result does not depend on the
// thread count.
template <typename Term>
std::vector<double> channel_sums(const ChannelExtent& e, int threads, Term term) {
  const index_t chunks = chunks_per_channel(e);
  std::vector<double> partial(static_cast<std::size_t>(e.channels * chunks), 0.0);
  for_each_chunk(e, threads, [&](index_t unit, index_t c, index_t offset, index_t length) {
    partial[unit] += term(c, offset, length);
  });
  std::vector<double> sums(static_cast<std::size_t>(e.channels), 0.0);
  for (std::size_t u = 0; u < partial.size(); ++u) sums[u / chunks] += partial[u];
  return sums;
}

}  // namespace

template <typename T>
BatchNorm<T>::BatchNorm(const Shape& input, const BatchNormOptions& options,
                        std::vector<T> gamma, std::vector<T> beta,
                        std::vector<T> moving_mean, std::vector<T> moving_variance)
    : input_(input), options_(options), scale_(!gamma.empty()), center_(!beta.empty()) {
  if (input_.rank() < 1 || input_.size() < 1) {
    throw std::invalid_argument("batch normalization needs a non-empty input");
  }
  if (options_.axis < 0 || options_.axis >= static_cast<index_t>(input_.rank())) {
    throw std::invalid_argument("batch normalization axis " + std::to_string(options_.axis) +
                                " is outside the input " + input_.to_string());
  }
  if (!(options_.momentum >= 0 && options_.momentum <= 1) || !(options_.epsilon > 0)) {
    throw std::invalid_argument("batch normalization needs momentum in [0, 1] and epsilon > 0");
  }
  const std::size_t C = static_cast<std::size_t>(input_[options_.axis]);
  auto add = [&](const char* name, std::vector<T> values, bool optional) {
    if (optional && values.empty()) return;
    if (values.size() != C) {
      throw std::invalid_argument(std::string("batch normalization ") + name + " has " +
                                  std::to_string(values.size()) + " values, expected " +
                                  std::to_string(C));
    }
    parameters_.push_back({name, std::move(values), {}});
  };
  add("gamma", std::move(gamma), true);
  add("beta", std::move(beta), true);
  add("moving_mean", std::move(moving_mean), false);
  add("moving_variance", std::move(moving_variance), false);
}

template <typename T>
ChannelExtent BatchNorm<T>::extent(index_t batch) const {
  ChannelExtent e;
  e.inner = batch;
  for (index_t a = 0; a < options_.axis; ++a) e.inner *= input_[a];
  e.channels = input_[options_.axis];
  for (std::size_t a = options_.axis + 1; a < input_.rank(); ++a) e.outer *= input_[a];
  return e;
}

template <typename T>
bool BatchNorm<T>::uses_batch_statistics(const Context& ctx, index_t batch) const {
  return ctx.training && !options_.frozen && extent(batch).per_channel() > 0;
}

template <typename T>
void BatchNorm<T>::set_batch_statistics(
    const std::vector<double>& sums,
    const std::function<std::vector<double>(const std::vector<double>&)>& squares_about,
    index_t n) {
  const std::size_t C = sums.size();
  batch_statistics_ = true;
  mean_.assign(C, 0.0);
  inv_std_.assign(C, 0.0);
  for (std::size_t c = 0; c < C; ++c) mean_[c] = sums[c] / double(n);
  const std::vector<double> squares = squares_about(mean_);
  // Keras rounds the decay to float32 even in float64 layers; the exact
  // value here differs from it by about 1e-8 relative in float64.
  const double decay = 1 - options_.momentum;
  const double bessel =
      options_.unbiased_moving_variance && n > 1 ? double(n) / double(n - 1) : 1.0;
  std::vector<T>& moving_m = moving_mean().values;
  std::vector<T>& moving_v = moving_variance().values;
  for (std::size_t c = 0; c < C; ++c) {
    const double variance = squares[c] / double(n);
    inv_std_[c] = 1 / std::sqrt(variance + options_.epsilon);
    moving_m[c] = T(moving_m[c] - (moving_m[c] - mean_[c]) * decay);
    moving_v[c] = T(moving_v[c] - (moving_v[c] - variance * bessel) * decay);
  }
}

template <typename T>
void BatchNorm<T>::set_moving_statistics() {
  const std::size_t C = moving_mean().values.size();
  batch_statistics_ = false;
  mean_.assign(C, 0.0);
  inv_std_.assign(C, 0.0);
  for (std::size_t c = 0; c < C; ++c) {
    mean_[c] = moving_mean().values[c];
    inv_std_[c] = 1 / std::sqrt(double(moving_variance().values[c]) + options_.epsilon);
  }
}

template <typename T>
void BatchNorm<T>::affine(std::vector<T>& multiplier, std::vector<T>& shift) const {
  // y = x * multiplier + shift, the form of tf.nn.batch_normalization.
  const std::size_t C = mean_.size();
  multiplier.resize(C);
  shift.resize(C);
  for (std::size_t c = 0; c < C; ++c) {
    const double m = inv_std_[c] * (scale_ ? double(parameters_[0].values[c]) : 1.0);
    multiplier[c] = T(m);
    shift[c] = T((center_ ? double(parameters_[scale_ ? 1 : 0].values[c]) : 0.0) - mean_[c] * m);
  }
}

template <typename T>
void BatchNorm<T>::forward(const Tensor<T>& input, Tensor<T>& output, const Context& ctx) {
  if (input.shape != input_.with_batch(input.batch())) {
    throw std::invalid_argument("batch normalization expected input " + input_.to_string() +
                                " per sample, got " + input.shape.to_string());
  }
  output.resize(input.shape);
  const ChannelExtent e = extent(input.batch());
  const T* x = input.data.data();
  if (uses_batch_statistics(ctx, input.batch())) {
    const std::vector<double> sums =
        channel_sums(e, ctx.threads, [&](index_t, index_t offset, index_t length) {
          double s = 0;
          for (index_t k = offset; k < offset + length; ++k) s += x[k];
          return s;
        });
    set_batch_statistics(
        sums,
        [&](const std::vector<double>& mean) {
          return channel_sums(e, ctx.threads, [&](index_t c, index_t offset, index_t length) {
            double s = 0;
            for (index_t k = offset; k < offset + length; ++k) {
              const double d = x[k] - mean[c];
              s += d * d;
            }
            return s;
          });
        },
        e.per_channel());
  } else {
    set_moving_statistics();
  }
  std::vector<T> multiplier, shift;
  affine(multiplier, shift);
  T* y = output.data.data();
  for_each_chunk(e, ctx.threads, [&](index_t, index_t c, index_t offset, index_t length) {
    for (index_t k = offset; k < offset + length; ++k) y[k] = x[k] * multiplier[c] + shift[c];
  });
}

template <typename T>
void BatchNorm<T>::set_gradients(const std::vector<double>& sum_g,
                                 const std::vector<double>& sum_gx, index_t n,
                                 std::vector<T>& scale, std::vector<T>& centered,
                                 std::vector<T>& slope, std::vector<T>& mean) {
  const std::size_t C = sum_g.size();
  std::vector<double> gamma_c(C, 1.0);
  if (scale_) {
    for (std::size_t c = 0; c < C; ++c) gamma_c[c] = gamma().values[c];
  }
  for (ParameterBlock<T>& block : parameters_) block.gradient.assign(block.values.size(), T(0));
  if (scale_) {
    for (std::size_t c = 0; c < C; ++c) gamma().gradient[c] = T(sum_gx[c]);
  }
  if (center_) {
    for (std::size_t c = 0; c < C; ++c) beta().gradient[c] = T(sum_g[c]);
  }
  if (!batch_statistics_) {
    for (std::size_t c = 0; c < C; ++c) {
      moving_mean().gradient[c] = T(-gamma_c[c] * inv_std_[c] * sum_g[c]);
      moving_variance().gradient[c] = T(-0.5 * gamma_c[c] * inv_std_[c] * inv_std_[c] * sum_gx[c]);
    }
  }
  // Training: dx = gamma / sigma (g - mean(g) - x_hat mean(g x_hat)), the
  // batch statistics' own gradient included; inference: dx = gamma / sigma g.
  scale.resize(C);
  centered.resize(C);
  slope.resize(C);
  mean.resize(C);
  for (std::size_t c = 0; c < C; ++c) {
    scale[c] = T(gamma_c[c] * inv_std_[c]);
    centered[c] = T(batch_statistics_ ? sum_g[c] / double(n) : 0.0);
    slope[c] = T(batch_statistics_ ? sum_gx[c] * inv_std_[c] / double(n) : 0.0);
    mean[c] = T(mean_[c]);
  }
}

template <typename T>
void BatchNorm<T>::backward(const Tensor<T>& input, const Tensor<T>&,
                            const Tensor<T>& grad_output, Tensor<T>* grad_input,
                            const Context& ctx, bool) {
  const ChannelExtent e = extent(input.batch());
  const T* x = input.data.data();
  const T* g = grad_output.data.data();
  const std::vector<double> sum_g =
      channel_sums(e, ctx.threads, [&](index_t, index_t offset, index_t length) {
        double s = 0;
        for (index_t k = offset; k < offset + length; ++k) s += g[k];
        return s;
      });
  // sum of g * x_hat, x_hat = (x - mean) / sqrt(variance + epsilon).
  const std::vector<double> sum_gx =
      channel_sums(e, ctx.threads, [&](index_t c, index_t offset, index_t length) {
        double s = 0;
        for (index_t k = offset; k < offset + length; ++k) s += g[k] * (x[k] - mean_[c]);
        return s * inv_std_[c];
      });
  std::vector<T> scale, centered, slope, mean;
  set_gradients(sum_g, sum_gx, e.per_channel(), scale, centered, slope, mean);
  if (grad_input == nullptr) return;
  grad_input->resize(input.shape);
  T* dx = grad_input->data.data();
  for_each_chunk(e, ctx.threads, [&](index_t, index_t c, index_t offset, index_t length) {
    for (index_t k = offset; k < offset + length; ++k) {
      dx[k] = scale[c] * (g[k] - centered[c] - slope[c] * (x[k] - mean[c]));
    }
  });
}

template class BatchNorm<float>;
template class BatchNorm<double>;

}  // namespace lcnn
