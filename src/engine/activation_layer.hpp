// A layer that only applies an activation (Keras's Activation).
#pragma once

#include <vector>

#include "activation.hpp"
#include "layer.hpp"

namespace lcnn {

template <typename T>
class ActivationLayer : public Layer<T> {
 public:
  ActivationLayer(const Shape& input, Activation activation)
      : input_(input), activation_(activation) {}

  Shape input_shape() const override { return input_; }
  Shape output_shape() const override { return input_; }
  void forward(const Tensor<T>& input, Tensor<T>& output, const Context& ctx) override {
    output = input;
    activation_.apply(output, ctx.record, ctx.threads);
  }
  void backward(const Tensor<T>&, const Tensor<T>& output, const Tensor<T>& grad_output,
                Tensor<T>* grad_input, const Context& ctx, bool through_logits) override {
    if (grad_input == nullptr) return;
    activation_.gradient(output, grad_output, through_logits, *grad_input, ctx.threads);
  }
  std::vector<ParameterBlock<T>>& parameters() override { return parameters_; }
  Activation activation() const override { return activation_.kind(); }
  const Tensor<T>* logits() const override { return activation_.logits(); }

 private:
  Shape input_;
  OutputActivation<T> activation_;
  std::vector<ParameterBlock<T>> parameters_;
};

}  // namespace lcnn
