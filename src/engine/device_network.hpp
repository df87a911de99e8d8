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

struct TrainingSpec;

// Whether a locally connected layer runs its batched-GEMM kernels on the
// device for a batch of B, rather than its direct ones.
bool device_uses_gemm(const LocalGeometry& geometry, index_t batch);

// Whether the device can train a network (with `training`, when not null):
// on refusal, why, and the engine number of the layer at fault (or -1).
struct DeviceSupport {
  bool supported = true;
  long layer = -1;
  std::string reason;
};
DeviceSupport device_support(Network<float>& network, const TrainingSpec* training);

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
  // After a recording forward() of `input`: every parameter's gradient.
  void backward(const float* input, const float* grad_output, std::int64_t batch,
                bool through_logits);
  DeviceLayer& output_layer() { return *layers_.back(); }
  // Parameter blocks in the engine network's order.
  std::vector<cuda::Buffer<float>*> parameter_values();
  std::vector<cuda::Buffer<float>*> parameter_gradients();

 private:
  Shape input_;
  std::vector<std::unique_ptr<DeviceLayer>> layers_;  // in chain order
  std::vector<std::size_t> layer_order_;    // engine layer number of each, for block order
  cuda::Buffer<float> batch_input_;         // predict()'s batches
  std::vector<cuda::Buffer<float>> grads_;  // dLoss/dInput of layers 1, 2, ...
};

}  // namespace lcnn
