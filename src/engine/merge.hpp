// Merge layers: several tensors in, one out (Keras's Concatenate, Add,
// Subtract, Multiply, Average, Maximum, Minimum).
#pragma once

#include <vector>

#include "layer.hpp"

namespace lcnn {

enum class MergeKind { concatenate, add, subtract, multiply, average, maximum, minimum };

MergeKind parse_merge(const std::string& name);

template <typename T>
class Merge : public Layer<T> {
 public:
  // Elementwise merges need equal shapes; concatenate equal shapes but on
  // `axis` (0-based over the sample axes). Throws std::invalid_argument
  // otherwise, and for subtract with other than two inputs.
  Merge(MergeKind kind, std::vector<Shape> inputs, std::size_t axis = 0);

  Shape input_shape() const override { return inputs_.front(); }
  Shape output_shape() const override { return output_; }
  std::vector<Shape> input_shapes() const override { return inputs_; }
  void forward_inputs(const std::vector<const Tensor<T>*>& inputs, Tensor<T>& output,
                      const Context& ctx) override;
  void backward_inputs(const std::vector<const Tensor<T>*>& inputs, const Tensor<T>& output,
                       const Tensor<T>& grad_output, const std::vector<Tensor<T>*>& grad_inputs,
                       const Context& ctx, bool through_logits) override;
  // A merge of one tensor, for callers that hold a single input.
  void forward(const Tensor<T>& input, Tensor<T>& output, const Context& ctx) override {
    forward_inputs({&input}, output, ctx);
  }
  void backward(const Tensor<T>& input, const Tensor<T>& output, const Tensor<T>& grad_output,
                Tensor<T>* grad_input, const Context& ctx, bool through_logits) override {
    backward_inputs({&input}, output, grad_output, {grad_input}, ctx, through_logits);
  }
  std::vector<ParameterBlock<T>>& parameters() override { return no_parameters_; }

 private:
  MergeKind kind_;
  std::vector<Shape> inputs_;
  Shape output_;
  std::size_t axis_;
  std::vector<ParameterBlock<T>> no_parameters_;
};

}  // namespace lcnn
