// Locally connected 1D/2D layer: a convolution without weight sharing.
#pragma once

#include <vector>

#include "activation.hpp"
#include "layer.hpp"
#include "local_geometry.hpp"

namespace lcnn {

template <typename T>
class LocallyConnected : public Layer<T> {
 public:
  // `kernel` and `bias` are in lcnn's layout (see LocalGeometry); `bias` is
  // empty when the layer has none.
  LocallyConnected(const LocalGeometry& geometry, Activation activation, std::vector<T> kernel,
                   std::vector<T> bias);

  Shape input_shape() const override { return geometry_.input_shape(); }
  Shape output_shape() const override { return geometry_.output_shape(); }
  void forward(const Tensor<T>& input, Tensor<T>& output, const Context& ctx) override;
  std::vector<ParameterBlock<T>>& parameters() override { return parameters_; }

 private:
  LocalGeometry geometry_;
  Activation activation_;
  std::vector<ParameterBlock<T>> parameters_;  // kernel, then bias if any
};

}  // namespace lcnn
