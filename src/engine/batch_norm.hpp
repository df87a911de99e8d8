// Batch normalization over one axis, as Keras's BatchNormalization: per
// channel c of that axis, y = gamma_c (x - mean_c) / sqrt(var_c + epsilon)
// + beta_c, with the batch's mean and biased variance over every other axis
// in training and the moving statistics at inference. Training forward()
// also updates the moving statistics:
//   moving -= (moving - batch statistic) (1 - momentum).
#pragma once

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

 private:
  ChannelExtent extent(index_t batch) const;
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
