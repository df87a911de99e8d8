// Convolution 1D/2D layer as Keras's Conv1D/Conv2D: TensorFlow's "same"
// padding, "causal" (1D), dilation and groups.
#pragma once

#include <vector>

#include "activation.hpp"
#include "layer.hpp"
#include "local_geometry.hpp"

namespace lcnn {

// Input channels and filters split into `groups`; group g maps its C / groups
// input channels to its F / groups filters. Axes come from
// AxisWindow::convolution.
struct ConvGeometry : WindowGeometry {
  index_t groups = 1;

  // Throws std::invalid_argument unless every size is positive and groups
  // divides both the channels and the filters.
  void validate() const;
  index_t group_channels() const { return channels / groups; }
  index_t group_filters() const { return filters / groups; }
  // Keras's kernel shape, (kh, kw, C / groups, F) or (k, C / groups, F) in 1D.
  // lcnn holds the kernel in exactly this layout, column-major as R holds it:
  // a (K * C / groups) x F matrix whose column block g belongs to group g.
  Shape kernel_shape() const;
};

template <typename T>
class Convolution : public Layer<T> {
 public:
  // `kernel` in Keras's layout (ConvGeometry::kernel_shape), `bias` of F
  // values or empty when the layer has none.
  Convolution(const ConvGeometry& geometry, Activation activation, std::vector<T> kernel,
              std::vector<T> bias);

  Shape input_shape() const override { return geometry_.input_shape(); }
  Shape output_shape() const override { return geometry_.output_shape(); }
  void forward(const Tensor<T>& input, Tensor<T>& output, const Context& ctx) override;
  void backward(const Tensor<T>& input, const Tensor<T>& output, const Tensor<T>& grad_output,
                Tensor<T>* grad_input, const Context& ctx, bool through_logits) override;
  std::vector<ParameterBlock<T>>& parameters() override { return parameters_; }
  Activation activation() const override { return activation_.kind(); }
  bool backward_reads_output(bool through_logits) const override {
    return activation_.gradient_reads_output(through_logits);
  }
  const Tensor<T>* logits() const override { return activation_.logits(); }
  const ConvGeometry& geometry() const { return geometry_; }

 private:
  ConvGeometry geometry_;
  OutputActivation<T> activation_;
  std::vector<ParameterBlock<T>> parameters_;  // kernel, then bias if any
  Tensor<T> grad_pre_;
  // backward()'s buffers: the input, dLoss/dPre-activation and the input
  // gradient in chunks of samples, and per chunk a partial kernel and bias
  // gradient.
  Buffer<T> x_chunks_, grad_chunks_, dx_chunks_;
  std::vector<T> kernel_partials_, bias_partials_;
};

}  // namespace lcnn
