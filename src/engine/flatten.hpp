// Flatten, as Keras's: each sample's values in C (row-major) order of its
// axes; a channels_first input is first moved to channels-last order.
#pragma once

#include <vector>

#include "layer.hpp"

namespace lcnn {

template <typename T>
class Flatten : public Layer<T> {
 public:
  Flatten(const Shape& input, bool channels_first);

  Shape input_shape() const override { return input_; }
  Shape output_shape() const override { return Shape{{input_.size()}}; }
  void forward(const Tensor<T>& input, Tensor<T>& output, const Context& ctx) override;
  void backward(const Tensor<T>& input, const Tensor<T>& output, const Tensor<T>& grad_output,
                Tensor<T>* grad_input, const Context& ctx, bool through_logits) override;
  std::vector<ParameterBlock<T>>& parameters() override { return parameters_; }

 private:
  Shape input_;
  // target_[f]: output feature of the input feature at column-major offset f.
  std::vector<index_t> target_;
  std::vector<ParameterBlock<T>> parameters_;
};

}  // namespace lcnn
