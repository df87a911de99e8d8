// A network: a DAG of layer calls (nodes) from one or more inputs to one or
// more outputs, owned by the engine. A sequential model is a chain. Callers
// hand it whole data sets; it cuts them into mini-batches itself.
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

// Values are numbered: the network's inputs first, then each node's output.
// Nodes come in an order where every input is an earlier value. Layers are
// numbered 0, 1, ... in any order (their parameter blocks follow it); a
// layer called several times (shared) has several nodes with its number.
struct Node {
  std::size_t layer = 0;
  std::vector<std::size_t> inputs;
};

struct Graph {
  std::vector<Shape> inputs;  // per-sample shapes
  std::vector<Node> nodes;
  std::vector<std::size_t> outputs;  // value ids
};

// Type-erased so that callers need not know the network's float type.
class NetworkBase {
 public:
  virtual ~NetworkBase() = default;
  virtual std::vector<Shape> input_shapes() const = 0;
  virtual std::vector<Shape> output_shapes() const = 0;
  // xs: one array per input, n samples each, column-major with dims
  // (n, shape...) as R holds them; ys: room for each output likewise.
  // Converted to the network's float type one mini-batch at a time.
  virtual void predict(const std::vector<const double*>& xs, index_t n, index_t batch_size,
                       const Context& ctx, const std::vector<double*>& ys) = 0;
};

template <typename T>
class Network : public NetworkBase {
 public:
  // One layer object per node: the nodes of a shared layer get objects of
  // their own (each keeps what its call's backward() needs) whose parameters
  // the network keeps equal to the first one's. Throws std::invalid_argument
  // if the graph is not well formed or shapes do not chain.
  Network(Graph graph, std::vector<std::unique_ptr<Layer<T>>> node_layers);

  std::vector<Shape> input_shapes() const override { return graph_.inputs; }
  std::vector<Shape> output_shapes() const override;
  void predict(const std::vector<const double*>& xs, index_t n, index_t batch_size,
               const Context& ctx, const std::vector<double*>& ys) override;

  // Runs every node; with ctx.record they keep what backward() needs.
  // Returns the outputs, valid until the next forward().
  std::vector<const Tensor<T>*> forward(const std::vector<const Tensor<T>*>& inputs,
                                        const Context& ctx);
  // The activity penalties (one per layer, or none) of the last forward().
  double activity_penalty(const std::vector<Penalty>& activity) const;
  // From dLoss/dOutput of each output (null: the loss does not depend on
  // it) after a recording forward(), sets every parameter's gradient,
  // adding the gradients of the activity penalties and summing over the
  // nodes of shared layers. `through_logits[o]`: output o's gradient is
  // dLoss/dLogits of the node that makes it (see fusable()).
  void backward(const std::vector<const Tensor<T>*>& inputs,
                const std::vector<const Tensor<T>*>& output_grads,
                const std::vector<bool>& through_logits, const Context& ctx,
                const std::vector<Penalty>& activity = {});

  std::size_t layer_count() const { return primary_.size(); }
  const Graph& graph() const { return graph_; }
  // The layer object of node k.
  Layer<T>& node_layer(std::size_t k) { return *node_layers_[k]; }
  // The layer object whose parameters are the layer's own (its first node).
  Layer<T>& layer(std::size_t l) { return *node_layers_[primary_[l]]; }
  // Whether layer l runs at more than one node (its gradients are then
  // those of its nodes summed, after backward() has run them all).
  bool shared(std::size_t l) const;
  // The node layer that makes output o, or null when o is a network input.
  const Layer<T>* output_layer(std::size_t o) const;
  // The index of that layer (when there is one).
  std::size_t output_layer_index(std::size_t o) const {
    return graph_.nodes[graph_.outputs[o] - graph_.inputs.size()].layer;
  }
  // Whether the loss of output o may take that layer's logits: the output
  // feeds nothing else, so its only gradient is the loss's.
  bool fusable(std::size_t o) const;
  // Output o's tensor as the last forward() left it, where a loss may write
  // its gradient over it, to be given to backward() as output o's gradient
  // with this through_logits: nothing reads the output after the loss (it
  // feeds nothing else, its layer has no activity penalty and its
  // backward() does not read it). Null otherwise.
  Tensor<T>* output_for_gradient(std::size_t o, bool through_logits,
                                 const std::vector<Penalty>& activity);
  // Makes the shared layers' other nodes hold the first node's parameters,
  // after those changed (an optimizer step, new values).
  void share_parameters();
  // Whether node k is a gather that the layer reading its output reads
  // through (Dense::read_through()): forward() then does not run it, and
  // its value is its input's tensor, in the input's layout.
  bool read_through(std::size_t k) const { return read_through_[k]; }

 private:
  // Runs node k on the values in current_, pointing current_ at its output.
  void run_node(std::size_t k, const Context& ctx);

  Graph graph_;
  std::vector<std::unique_ptr<Layer<T>>> node_layers_;
  std::vector<std::size_t> primary_;     // per layer: its first node
  std::vector<std::size_t> consumers_;   // per value: how many node inputs and outputs use it
  std::vector<bool> read_through_;       // per node (read_through())
  std::vector<Tensor<T>> values_;        // node outputs, reused across batches
  // predict()'s batch of each input that no layer takes as R holds it, in
  // T, kept across calls as values_ is: a fresh one per call cost its
  // allocation, zeroing and page faults (W2's 14.7 MB input: 9% of its
  // forward pass on one thread).
  std::vector<Tensor<T>> predict_inputs_;
  std::vector<Tensor<T>> grads_;         // dLoss/dValue per node output
  std::vector<bool> has_grad_;
  std::vector<std::vector<Tensor<T>>> input_grads_;  // per node, per input: scratch
  // Per value, in forward() and predict(); backward() and
  // activity_penalty() read the last forward()'s (a read-through node's
  // value is its input's tensor).
  std::vector<const Tensor<T>*> current_;
  std::vector<const Tensor<T>*> node_inputs_;  // run_node()'s scratch
};

}  // namespace lcnn
