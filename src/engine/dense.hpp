// Dense layer on the last axis, as Keras's Dense: y = a(x W + b) with W of
// shape (D, F) (the Keras kernel, column-major as R holds it).
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "activation.hpp"
#include "layer.hpp"
#include "reshaping.hpp"

namespace lcnn {

// Whether a dense layer with `kernel_size` weights multiplies `samples`
// rows (the batch times the axes before the last) with the column products
// of gemm.hpp rather than Eigen's GEMMs, by the shape alone.
bool dense_column_products(index_t samples, index_t kernel_size);

template <typename T>
class Dense : public Layer<T> {
 public:
  // `input` is the per-sample shape, whose last axis has D entries.
  Dense(const Shape& input, index_t units, Activation activation, std::vector<T> kernel,
        std::vector<T> bias);

  Shape input_shape() const override { return input_; }
  Shape output_shape() const override;
  void forward(const Tensor<T>& input, Tensor<T>& output, const Context& ctx) override;
  void backward(const Tensor<T>& input, const Tensor<T>& output, const Tensor<T>& grad_output,
                Tensor<T>* grad_input, const Context& ctx, bool through_logits) override;
  std::vector<ParameterBlock<T>>& parameters() override { return parameters_; }
  Activation activation() const override { return activation_.kind(); }
  bool backward_reads_output(bool through_logits) const override {
    return activation_.gradient_reads_output(through_logits);
  }
  const Tensor<T>* logits() const override { return activation_.logits(); }
  // Makes forward() and backward() take the input of `gather` in place of
  // its output, as if the gather had run: the network then skips the
  // gather (Network, "read through"). Only for a gather that permutes its
  // input's features (a flatten) into this layer's input of rank 1; returns
  // whether the layer will. The gather's input feature f lies at
  // stored_at(f) of a sample (its own offset unless the layer before lays
  // it out otherwise).
  bool read_through(const Gather<T>& gather,
                    const std::function<index_t(index_t)>& stored_at = nullptr);

 private:
  // The input's feature that feature d of input_ is.
  index_t input_feature(index_t d) const { return through_ ? through_->source()[d] : d; }
  // The input as input_ lays it out, for Eigen's GEMMs: the input itself,
  // or its features gathered into gathered_.
  const Tensor<T>& laid_out(const Tensor<T>& input, const Context& ctx);

  Shape input_;
  index_t units_;
  OutputActivation<T> activation_;
  std::vector<ParameterBlock<T>> parameters_;
  Tensor<T> grad_pre_;
  std::unique_ptr<Gather<T>> through_;  // set by read_through()
  Tensor<T> gathered_, gathered_grad_;
};

}  // namespace lcnn
