// A network on a CUDA device (float32): built from an engine network whose
// layers it mirrors, it keeps parameters, gradients and activations in
// device memory and computes through cuda/device.hpp only. Batches arrive
// as device pointers; the trainer (device_trainer.hpp) moves them.
//
// Supported: chains (one input, one output, each layer called once) of
// locally connected, convolution, dense, activation, dropout, pooling (max
// and average, local and global), batch normalization and value-moving
// layers (flatten, reshape, permute, zero padding, cropping). Anything else
// throws DeviceUnsupported naming it, before any device memory is touched.
// The device network keeps references to the engine network's batch
// normalization layers, which must outlive it.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "../cuda/device.hpp"
#include "local_geometry.hpp"
#include "network.hpp"

namespace lcnn {

// The network or its training needs something the device path lacks.
class DeviceUnsupported : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Whether a locally connected layer runs its batched-GEMM kernels on the
// device for a batch of B, rather than its direct ones.
bool device_uses_gemm(const LocalGeometry& geometry, index_t batch);

// Whether the device can run and train a network: on refusal, why, and the
// engine number of the layer at fault (or -1).
struct DeviceSupport {
  bool supported = true;
  long layer = -1;
  std::string reason;
};
DeviceSupport device_support(Network<float>& network);

// One layer's share of the device network.
class DeviceLayer {
 public:
  virtual ~DeviceLayer() = default;
  // Writes the layer's output for a batch of B into output(); with
  // ctx.record keeps what backward() needs; ctx.training and ctx.seed as the
  // engine's layers take them (dropout).
  virtual void forward(const float* input, std::int64_t batch, const Context& ctx) = 0;
  // From dLoss/dOutput (dLoss/dLogits with `through_logits`) of the last
  // recording forward(): the parameter gradients and, with `grad_input`,
  // dLoss/dInput written there.
  virtual void backward(const float* input, const float* grad_output, float* grad_input,
                        std::int64_t batch, bool through_logits) = 0;

  const Shape& input_shape() const { return input_; }
  const Shape& output_shape() const { return output_; }
  float* output() { return output_values_.data(); }
  // The pre-activation of the last recording forward() (for a loss that
  // takes the logits).
  const float* logits() const { return pre_.data(); }
  Activation activation() const { return activation_; }
  std::vector<cuda::Buffer<float>>& values() { return values_; }
  std::vector<cuda::Buffer<float>>& gradients() { return gradients_; }

 protected:
  DeviceLayer(Shape input, Shape output, Activation activation,
              const std::vector<ParameterBlock<float>>& parameters);
  // Room for the output of a batch of B.
  void size_output(std::int64_t batch);
  // Applies the activation to the pre-activation in output().
  void activate(std::int64_t batch, bool record);
  // dLoss/dPre-activation: grad_output itself where it passes unchanged,
  // else computed into a buffer of the layer's.
  const float* pre_gradient(const float* grad_output, std::int64_t batch, bool through_logits);

  Shape input_, output_;
  Activation activation_;
  std::vector<cuda::Buffer<float>> values_, gradients_;
  cuda::Buffer<float> output_values_, pre_, grad_pre_;
};

class DeviceNetwork : public NetworkBase {
 public:
  // Mirrors `network` (its current parameters; see above for its batch
  // normalization layers); throws DeviceUnsupported (see device_support())
  // before allocating anything.
  explicit DeviceNetwork(Network<float>& network);

  std::vector<Shape> input_shapes() const override { return {input_}; }
  std::vector<Shape> output_shapes() const override { return {layers_.back()->output_shape()}; }
  void predict(const std::vector<const double*>& xs, index_t n, index_t batch_size,
               const Context& ctx, const std::vector<double*>& ys) override;

  // input: a device batch of B. Returns the device output.
  const float* forward(const float* input, std::int64_t batch, const Context& ctx);
  // After a recording forward() of `input`: every parameter's gradient,
  // with the gradients of the activity penalties (one per engine layer, or
  // none) added to the layers' output gradients.
  void backward(const float* input, const float* grad_output, std::int64_t batch,
                bool through_logits, const std::vector<Penalty>& activity = {});
  // The activity penalties of the last forward(): per penalized layer,
  // l1 sum |y| + l2 sum y^2 over its outputs, divided by the batch size.
  double activity_penalty(const std::vector<Penalty>& activity, std::int64_t batch);
  DeviceLayer& output_layer() { return *layers_.back(); }
  // Whether the output layer has an activity penalty (its loss then takes
  // the probabilities, not the logits, as the CPU trainer's does).
  bool output_penalized(const std::vector<Penalty>& activity) const {
    return penalized(activity, layers_.size() - 1);
  }
  // Parameter blocks in the engine network's order.
  std::vector<cuda::Buffer<float>*> parameter_values();
  std::vector<cuda::Buffer<float>*> parameter_gradients();

 private:
  // The blocks a layer's member function gives (values or gradients), layer
  // after layer in the engine network's order.
  std::vector<cuda::Buffer<float>*> parameter_blocks(
      std::vector<cuda::Buffer<float>>& (DeviceLayer::*blocks)());
  bool penalized(const std::vector<Penalty>& activity, std::size_t k) const {
    return layer_order_[k] < activity.size() && activity[layer_order_[k]].active();
  }

  Shape input_;
  std::vector<std::unique_ptr<DeviceLayer>> layers_;  // in chain order
  std::vector<std::size_t> layer_order_;    // engine layer number of each, for block order
  cuda::Buffer<float> batch_input_;         // predict()'s batches
  std::vector<cuda::Buffer<float>> grads_;  // dLoss/dInput of layers 1, 2, ...
  cuda::Buffer<float> output_grad_;          // the output's, when a penalty adds to it
  cuda::Buffer<double> partials_;
};

// The penalty l1 sum |v| + l2 sum v^2 over n device values, summed in
// double on the device in fixed chunks (partials: scratch).
double device_penalty(const float* values, std::int64_t n, const Penalty& penalty,
                      cuda::Buffer<double>& partials);

}  // namespace lcnn
