// A network: layers applied in sequence, owned by the engine. Callers hand it
// whole data sets; it cuts them into mini-batches itself.
#pragma once

#include <memory>
#include <vector>

#include "layer.hpp"

namespace lcnn {

// Penalty l1 * sum|w| + l2 * sum w^2 on weights or, divided by the batch
// size as Keras does, on a layer's outputs.
struct Penalty {
  double l1 = 0, l2 = 0;
  bool active() const { return l1 != 0 || l2 != 0; }
};

// Type-erased so that callers need not know the network's float type.
class NetworkBase {
 public:
  virtual ~NetworkBase() = default;
  virtual Shape input_shape() const = 0;
  virtual Shape output_shape() const = 0;
  // x: n samples, column-major with dims (n, input_shape...), as R holds them;
  // y: room for (n, output_shape...). Converted to the network's float type
  // one mini-batch at a time.
  virtual void predict(const double* x, index_t n, index_t batch_size, const Context& ctx,
                       double* y) = 0;
};

template <typename T>
class Network : public NetworkBase {
 public:
  // Throws std::invalid_argument if consecutive layers' shapes do not chain.
  explicit Network(std::vector<std::unique_ptr<Layer<T>>> layers);

  Shape input_shape() const override { return layers_.front()->input_shape(); }
  Shape output_shape() const override { return layers_.back()->output_shape(); }
  void predict(const double* x, index_t n, index_t batch_size, const Context& ctx,
               double* y) override;

  // Runs every layer; with ctx.record they keep what backward() needs.
  const Tensor<T>& forward(const Tensor<T>& input, const Context& ctx);
  // The activity penalties (one per layer, or none) of the last forward().
  double activity_penalty(const std::vector<Penalty>& activity) const;
  // From dLoss/dOutput of the last recording forward(), sets every
  // parameter's gradient (and dLoss/dInput unless grad_input is null),
  // adding the gradient of the activity penalties on the way.
  // `through_logits`: grad_output is dLoss/dLogits of the last layer.
  void backward(const Tensor<T>& input, const Tensor<T>& grad_output, Tensor<T>* grad_input,
                const Context& ctx, bool through_logits,
                const std::vector<Penalty>& activity = {});
  Layer<T>& layer(std::size_t i) { return *layers_[i]; }
  std::size_t size() const { return layers_.size(); }

  std::vector<std::unique_ptr<Layer<T>>> layers_;
  std::vector<Tensor<T>> activations_;  // one per layer, reused across batches
  std::vector<Tensor<T>> gradients_;    // dLoss/dInput of each layer but the first
  Tensor<T> output_gradient_;          // dLoss/dOutput with the last layer's activity term
};

}  // namespace lcnn
