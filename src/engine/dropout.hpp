// Inverted dropout, as Keras's: in training each value (or each slice along
// the axes where noise_shape is 1) is kept with probability 1 - rate and
// scaled by 1 / (1 - rate); at inference the layer is the identity.
#pragma once

#include <cstdint>
#include <vector>

#include "layer.hpp"

namespace lcnn {

// The mask of one training batch of `shape` (batch axis first): one draw
// per cell of the noise shape (the axes `shared` keep at 1), kept with
// probability 1 - rate as 1 / (1 - rate), else 0, spread over the shared
// axes. The CPU layer and the device network both draw it here.
template <typename T>
void dropout_mask(const Shape& shape, double rate, const std::vector<bool>& shared,
                  std::uint64_t salt, std::uint64_t seed, std::vector<T>& mask);

template <typename T>
class Dropout : public Layer<T> {
 public:
  // `shared` has one flag per axis, batch first: true where one mask value
  // is shared along that axis (noise_shape 1). `salt` tells this layer's
  // draws apart from other dropout layers' in the same batch.
  Dropout(const Shape& input, double rate, std::vector<bool> shared, std::uint64_t salt);

  Shape input_shape() const override { return input_; }
  Shape output_shape() const override { return input_; }
  void forward(const Tensor<T>& input, Tensor<T>& output, const Context& ctx) override;
  void backward(const Tensor<T>& input, const Tensor<T>& output, const Tensor<T>& grad_output,
                Tensor<T>* grad_input, const Context& ctx, bool through_logits) override;
  std::vector<ParameterBlock<T>>& parameters() override { return parameters_; }
  double rate() const { return rate_; }
  const std::vector<bool>& shared() const { return shared_; }
  std::uint64_t salt() const { return salt_; }

 private:
  Shape input_;
  double rate_;
  std::vector<bool> shared_;
  std::uint64_t salt_;
  std::vector<T> mask_;  // per value of the last training batch: 0 or 1 / (1 - rate)
  std::vector<ParameterBlock<T>> parameters_;
};

}  // namespace lcnn
