// Batch normalization over one axis, as Keras's BatchNormalization: per
// channel c of that axis, y = gamma_c (x - mean_c) / sqrt(var_c + epsilon)
// + beta_c, with the batch's mean and biased variance over every other axis
// in training and the moving statistics at inference. Training forward()
// also updates the moving statistics:
//   moving -= (moving - batch statistic) (1 - momentum).
#pragma once

#include <functional>
#include <vector>

#include "layer.hpp"

namespace lcnn {

struct BatchNormOptions {
  index_t axis = 0;  // the normalized axis of the per-sample shape, from 0
  double momentum = 0.99;
  double epsilon = 1e-3;
  // A non-trainable layer normalizes with its moving statistics even while
  // training and leaves them unchanged, as TF2 keras does.
  bool frozen = false;
  // The moving variance follows the unbiased batch variance (n / (n - 1)
  // times the biased one), as Keras's fused kernel does; the output is always
  // normalized with the biased variance.
  bool unbiased_moving_variance = false;
};

// How a batch's values of one channel lie in memory (batch fastest): runs of
// `inner` contiguous values, `inner * channels` apart, `outer` of them.
struct ChannelExtent {
  index_t inner = 1, channels = 1, outer = 1;
  index_t per_channel() const { return inner * outer; }
};

// Per-channel sums are taken over chunks of this many of a channel's values
// (in order, each chunk's runs of contiguous values in order) and the
// chunks' sums added in order: the same sums on any number of threads and
// on the device.
constexpr index_t kBatchNormChunk = 1 << 14;
inline index_t batch_norm_chunks(const ChannelExtent& e) {
  const index_t chunks = (e.per_channel() + kBatchNormChunk - 1) / kBatchNormChunk;
  return chunks > 1 ? chunks : 1;
}

template <typename T>
class BatchNorm : public Layer<T> {
 public:
  // Parameter blocks in Keras's order: gamma (unless empty: no scale), beta
  // (unless empty: no centering), moving_mean, moving_variance, each with
  // one value per channel.
  BatchNorm(const Shape& input, const BatchNormOptions& options, std::vector<T> gamma,
            std::vector<T> beta, std::vector<T> moving_mean, std::vector<T> moving_variance);

  Shape input_shape() const override { return input_; }
  Shape output_shape() const override { return input_; }
  void forward(const Tensor<T>& input, Tensor<T>& output, const Context& ctx) override;
  // After a training forward(), the input gradient runs through the batch
  // statistics and the moving statistics get a zero gradient (the output
  // does not depend on them); after an inference forward() they get their
  // true gradient, though they never train.
  void backward(const Tensor<T>& input, const Tensor<T>& output, const Tensor<T>& grad_output,
                Tensor<T>* grad_input, const Context& ctx, bool through_logits) override;
  std::vector<ParameterBlock<T>>& parameters() override { return parameters_; }

  // forward() and backward() in steps around their channel sums, for the
  // device network, which takes the sums itself (see kBatchNormChunk).
  ChannelExtent extent(index_t batch) const;
  // Whether forward() normalizes with the batch's statistics.
  bool uses_batch_statistics(const Context& ctx, index_t batch) const;
  // From the sums of x and of (x - mean)^2 over each channel's n values: the
  // statistics to normalize with, and the moving statistics updated.
  void set_batch_statistics(const std::vector<double>& sums,
                            const std::function<std::vector<double>(const std::vector<double>&)>&
                                squares_about,
                            index_t n);
  // The moving statistics as those to normalize with.
  void set_moving_statistics();
  // y = x * multiplier[c] + shift[c] with the statistics set.
  void affine(std::vector<T>& multiplier, std::vector<T>& shift) const;
  // From the sums of g and of g * x_hat over each channel's n values: every
  // block's gradient, and dx = scale[c] (g - centered[c] - slope[c] (x -
  // mean[c])).
  void set_gradients(const std::vector<double>& sum_g, const std::vector<double>& sum_gx,
                     index_t n, std::vector<T>& scale, std::vector<T>& centered,
                     std::vector<T>& slope, std::vector<T>& mean);
  const std::vector<double>& mean() const { return mean_; }
  const std::vector<double>& inv_std() const { return inv_std_; }

 private:
  ParameterBlock<T>& gamma() { return parameters_[0]; }
  ParameterBlock<T>& beta() { return parameters_[scale_ ? 1 : 0]; }
  ParameterBlock<T>& moving_mean() { return parameters_[parameters_.size() - 2]; }
  ParameterBlock<T>& moving_variance() { return parameters_.back(); }

  Shape input_;
  BatchNormOptions options_;
  bool scale_, center_;
  std::vector<ParameterBlock<T>> parameters_;
  // What the last forward() normalized with, per channel: the batch's or the
  // moving mean, and 1 / sqrt(variance + epsilon).
  bool batch_statistics_ = false;
  std::vector<double> mean_, inv_std_;
};

}  // namespace lcnn
