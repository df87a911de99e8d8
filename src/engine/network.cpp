#include "network.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

#include "convert.hpp"
#include "dense.hpp"
#include "locally_connected.hpp"
#include "parallel.hpp"
#include "penalty_formula.hpp"
#include "reshaping.hpp"

namespace lcnn {

namespace {

std::string node_name(std::size_t k) { return "node " + std::to_string(k + 1); }

}  // namespace

template <typename T>
Network<T>::Network(Graph graph, std::vector<std::unique_ptr<Layer<T>>> node_layers)
    : graph_(std::move(graph)), node_layers_(std::move(node_layers)) {
  const std::size_t n_in = graph_.inputs.size(), n_nodes = graph_.nodes.size();
  if (n_in == 0) throw std::invalid_argument("a network needs at least one input");
  if (graph_.outputs.empty()) throw std::invalid_argument("a network needs at least one output");
  if (node_layers_.size() != n_nodes) {
    throw std::invalid_argument("a network needs one layer object per node");
  }
  consumers_.assign(n_in + n_nodes, 0);
  std::vector<Shape> shapes = graph_.inputs;
  const std::size_t unset = n_nodes;
  for (std::size_t k = 0; k < n_nodes; ++k) {
    const Node& node = graph_.nodes[k];
    const std::vector<Shape> expected = node_layers_[k]->input_shapes();
    if (node.inputs.size() != expected.size()) {
      throw std::invalid_argument(node_name(k) + " takes " + std::to_string(expected.size()) +
                                  " input(s) but is given " +
                                  std::to_string(node.inputs.size()));
    }
    for (std::size_t i = 0; i < node.inputs.size(); ++i) {
      const std::size_t v = node.inputs[i];
      if (v >= n_in + k) {
        throw std::invalid_argument(node_name(k) + " reads a value that is not computed before it");
      }
      if (shapes[v] != expected[i]) {
        throw std::invalid_argument(node_name(k) + " expects input " + expected[i].to_string() +
                                    " but is given " + shapes[v].to_string());
      }
      ++consumers_[v];
    }
    shapes.push_back(node_layers_[k]->output_shape());
    if (node.layer >= primary_.size()) primary_.resize(node.layer + 1, unset);
    if (primary_[node.layer] == unset) {
      primary_[node.layer] = k;
      continue;
    }
    auto& own = node_layers_[k]->parameters();
    const auto& shared = node_layers_[primary_[node.layer]]->parameters();
    bool same = own.size() == shared.size();
    for (std::size_t b = 0; same && b < own.size(); ++b) {
      same = own[b].values.size() == shared[b].values.size();
    }
    if (!same) throw std::invalid_argument(node_name(k) + " shares a layer of other parameters");
  }
  if (std::find(primary_.begin(), primary_.end(), unset) != primary_.end()) {
    throw std::invalid_argument("a layer of the network is never called");
  }
  for (std::size_t v : graph_.outputs) {
    if (v >= n_in + n_nodes) throw std::invalid_argument("a network output is not a value");
    ++consumers_[v];
  }
  // Where a node's output is read by one other node alone, the two may lay
  // it out between them so that neither copies every value of it, in
  // forward() and again for its gradient in backward() (bench/NOTES.md): a
  // gather that only reorders features (a flatten) into a dense layer is
  // not run, the dense layer reading the gather's input with its features
  // in the gather's order (Dense::read_through()); a locally connected
  // layer into another lays its output out with channels inner, as the
  // reader would copy it (LocallyConnected::read_channels_inner_from()),
  // and so does one into such a gather, whose order (channels_last
  // flattened) that then is.
  read_through_.assign(n_nodes, false);
  // The layer whose output node j reads, where node j is its only reader.
  const auto read_only_by = [&](std::size_t j) -> Layer<T>* {
    const std::vector<std::size_t>& from = graph_.nodes[j].inputs;
    if (from.size() != 1 || from[0] < n_in || consumers_[from[0]] != 1) return nullptr;
    return node_layers_[from[0] - n_in].get();
  };
  for (std::size_t j = 0; j < n_nodes; ++j) {
    Layer<T>* const producer = read_only_by(j);
    if (producer == nullptr) continue;
    const std::size_t k = graph_.nodes[j].inputs.front() - n_in;
    Layer<T>* const reader = node_layers_[j].get();
    if (auto* dense = dynamic_cast<Dense<T>*>(reader)) {
      const auto* gather = dynamic_cast<const Gather<T>*>(producer);
      if (gather == nullptr) continue;
      auto* local = dynamic_cast<LocallyConnected<T>*>(read_only_by(k));
      const bool lays = local != nullptr && local->can_lay_output_channels_inner();
      read_through_[k] = dense->read_through(*gather, [&](index_t feature) {
        return lays ? local->channels_inner_offset(feature) : feature;
      });
      if (read_through_[k] && lays) local->lay_output_channels_inner();
    } else if (auto* local = dynamic_cast<LocallyConnected<T>*>(reader)) {
      auto* before = dynamic_cast<LocallyConnected<T>*>(producer);
      if (before != nullptr) local->read_channels_inner_from(*before);
    }
  }
  values_.resize(n_nodes);
  grads_.resize(n_nodes);
  has_grad_.assign(n_nodes, false);
  input_grads_.resize(n_nodes);
  for (std::size_t k = 0; k < n_nodes; ++k) input_grads_[k].resize(graph_.nodes[k].inputs.size());
  share_parameters();
}

template <typename T>
std::vector<Shape> Network<T>::output_shapes() const {
  std::vector<Shape> out;
  const std::size_t n_in = graph_.inputs.size();
  for (std::size_t v : graph_.outputs) {
    out.push_back(v < n_in ? graph_.inputs[v] : node_layers_[v - n_in]->output_shape());
  }
  return out;
}

template <typename T>
const Layer<T>* Network<T>::output_layer(std::size_t o) const {
  const std::size_t v = graph_.outputs[o], n_in = graph_.inputs.size();
  return v < n_in ? nullptr : node_layers_[v - n_in].get();
}

template <typename T>
bool Network<T>::fusable(std::size_t o) const {
  const std::size_t v = graph_.outputs[o];
  return v >= graph_.inputs.size() && consumers_[v] == 1;
}

template <typename T>
Tensor<T>* Network<T>::output_for_gradient(std::size_t o, bool through_logits,
                                           const std::vector<Penalty>& activity) {
  if (!fusable(o)) return nullptr;
  const std::size_t k = graph_.outputs[o] - graph_.inputs.size(), layer = graph_.nodes[k].layer;
  if (layer < activity.size() && activity[layer].active()) return nullptr;
  if (node_layers_[k]->backward_reads_output(through_logits)) return nullptr;
  return &values_[k];
}

template <typename T>
bool Network<T>::shared(std::size_t l) const {
  return std::count_if(graph_.nodes.begin(), graph_.nodes.end(),
                       [l](const Node& node) { return node.layer == l; }) > 1;
}

template <typename T>
void Network<T>::share_parameters() {
  for (std::size_t k = 0; k < graph_.nodes.size(); ++k) {
    const std::size_t first = primary_[graph_.nodes[k].layer];
    if (first == k) continue;
    auto& own = node_layers_[k]->parameters();
    const auto& shared = node_layers_[first]->parameters();
    for (std::size_t b = 0; b < own.size(); ++b) own[b].values = shared[b].values;
  }
}

template <typename T>
std::vector<const Tensor<T>*> Network<T>::forward(const std::vector<const Tensor<T>*>& inputs,
                                                  const Context& ctx) {
  if (inputs.size() != graph_.inputs.size()) {
    throw std::invalid_argument("the network takes " + std::to_string(graph_.inputs.size()) +
                                " inputs but is given " + std::to_string(inputs.size()));
  }
  current_ = inputs;
  current_.resize(inputs.size() + graph_.nodes.size());
  for (std::size_t k = 0; k < graph_.nodes.size(); ++k) run_node(k, ctx);
  std::vector<const Tensor<T>*> out;
  for (std::size_t v : graph_.outputs) out.push_back(current_[v]);
  return out;
}

template <typename T>
void Network<T>::run_node(std::size_t k, const Context& ctx) {
  if (read_through_[k]) {
    current_[graph_.inputs.size() + k] = current_[graph_.nodes[k].inputs.front()];
    return;
  }
  node_inputs_.clear();
  for (std::size_t v : graph_.nodes[k].inputs) node_inputs_.push_back(current_[v]);
  node_layers_[k]->forward_inputs(node_inputs_, values_[k], ctx);
  current_[graph_.inputs.size() + k] = &values_[k];
}

template <typename T>
double Network<T>::activity_penalty(const std::vector<Penalty>& activity) const {
  double total = 0;
  for (std::size_t k = 0; k < graph_.nodes.size(); ++k) {
    const std::size_t l = graph_.nodes[k].layer;
    if (l >= activity.size() || !activity[l].active()) continue;
    const Tensor<T>& y = *current_[graph_.inputs.size() + k];
    double sum = 0;
    for (T v : y.data) {
      sum += activity[l].l1 * std::abs(double(v)) + activity[l].l2 * double(v) * double(v);
    }
    total += sum / double(y.batch());
  }
  return total;
}

namespace {

// Adds the gradient of (l1 sum|y| + l2 sum y^2) / B to grad.
template <typename T>
void add_activity_gradient(const Penalty& p, const Tensor<T>& y, Tensor<T>& grad) {
  const T l1 = T(p.l1 / double(y.batch())), two_l2 = T(2 * p.l2 / double(y.batch()));
  for (std::size_t k = 0; k < y.data.size(); ++k) {
    grad.data[k] += penalty_gradient(y.data[k], l1, two_l2);
  }
}

// grad += addend, or grad = addend (taking its storage) when grad has none yet.
template <typename T>
void accumulate(Tensor<T>& grad, bool& has, Tensor<T>& addend) {
  if (!has) {
    std::swap(grad, addend);
    has = true;
    return;
  }
  for (std::size_t i = 0; i < grad.data.size(); ++i) grad.data[i] += addend.data[i];
}

}  // namespace

template <typename T>
void Network<T>::backward(const std::vector<const Tensor<T>*>& inputs,
                          const std::vector<const Tensor<T>*>& output_grads,
                          const std::vector<bool>& through_logits, const Context& ctx,
                          const std::vector<Penalty>& activity) {
  const std::size_t n_in = graph_.inputs.size(), n_nodes = graph_.nodes.size();
  if (output_grads.size() != graph_.outputs.size() ||
      through_logits.size() != graph_.outputs.size()) {
    throw std::invalid_argument("backward() needs one gradient per network output");
  }
  std::fill(has_grad_.begin(), has_grad_.end(), false);
  std::vector<bool> logits(n_nodes, false);
  // dLoss/dOutput of each node: its own tensor in grads_, or the caller's
  // gradient itself when that is all there is to it (the value is used
  // only as this output, and no activity penalty adds to it), which saves
  // copying an output-sized tensor every batch.
  std::vector<const Tensor<T>*> node_grad(n_nodes);
  for (std::size_t k = 0; k < n_nodes; ++k) node_grad[k] = &grads_[k];
  for (std::size_t o = 0; o < graph_.outputs.size(); ++o) {
    const std::size_t v = graph_.outputs[o];
    if (output_grads[o] == nullptr || v < n_in) continue;
    if (through_logits[o] && !fusable(o)) {
      throw std::invalid_argument("output " + std::to_string(o + 1) +
                                  " feeds other nodes and cannot take its logits' gradient");
    }
    const std::size_t k = v - n_in, layer = graph_.nodes[k].layer;
    const bool penalized = layer < activity.size() && activity[layer].active();
    if (consumers_[v] == 1 && !penalized) {
      node_grad[k] = output_grads[o];
      has_grad_[k] = true;
    } else {
      Tensor<T> copy = *output_grads[o];
      bool has = has_grad_[k];
      accumulate(grads_[k], has, copy);
      has_grad_[k] = has;
    }
    logits[k] = through_logits[o];
  }
  std::vector<const Tensor<T>*> node_inputs;
  std::vector<Tensor<T>*> node_grads;
  for (std::size_t k = n_nodes; k-- > 0;) {
    const Node& node = graph_.nodes[k];
    // A node the loss does not reach still runs, with a zero gradient, so
    // that its parameters' gradients are set (to zero) like everyone's.
    const Tensor<T>& value = *current_[n_in + k];
    if (!has_grad_[k]) {
      grads_[k].resize(value.shape);
      std::fill(grads_[k].data.begin(), grads_[k].data.end(), T(0));
      has_grad_[k] = true;
    }
    if (node.layer < activity.size() && activity[node.layer].active()) {
      add_activity_gradient(activity[node.layer], value, grads_[k]);
    }
    if (read_through_[k]) {
      // The gradient is in the input's layout already: it passes on.
      std::swap(input_grads_[k].front(), grads_[k]);
    } else {
      node_inputs.clear();
      node_grads.clear();
      for (std::size_t i = 0; i < node.inputs.size(); ++i) {
        const std::size_t v = node.inputs[i];
        node_inputs.push_back(v < n_in ? inputs[v] : current_[v]);
        node_grads.push_back(v < n_in ? nullptr : &input_grads_[k][i]);
      }
      node_layers_[k]->backward_inputs(node_inputs, values_[k], *node_grad[k], node_grads, ctx,
                                       logits[k]);
    }
    for (std::size_t i = 0; i < node.inputs.size(); ++i) {
      const std::size_t v = node.inputs[i];
      if (v < n_in) continue;
      bool has = has_grad_[v - n_in];
      accumulate(grads_[v - n_in], has, input_grads_[k][i]);
      has_grad_[v - n_in] = has;
    }
  }
  for (std::size_t k = 0; k < n_nodes; ++k) {
    const std::size_t first = primary_[graph_.nodes[k].layer];
    if (first == k) continue;
    auto& into = node_layers_[first]->parameters();
    const auto& from = node_layers_[k]->parameters();
    for (std::size_t b = 0; b < into.size(); ++b) {
      for (std::size_t i = 0; i < into[b].gradient.size(); ++i) {
        into[b].gradient[i] += from[b].gradient[i];
      }
    }
  }
}

namespace {

// body(first, runs) over blocks of the `features` runs of `count` values of
// one batch of a column-major (n, ...) array, converted into or out of the
// engine's (count, ...) one, in parallel.
template <typename Body>
void for_each_run_block(index_t count, index_t features, int threads, Body body) {
  constexpr index_t kValuesPerBlock = index_t(1) << 16;
  for_each_block(features, std::max<index_t>(1, kValuesPerBlock / std::max<index_t>(1, count)),
                 threads, body);
}

}  // namespace

template <typename T>
void Network<T>::predict(const std::vector<const double*>& xs, index_t n, index_t batch_size,
                         const Context& ctx, const std::vector<double*>& ys) {
  if (batch_size < 1) throw std::invalid_argument("batch_size must be at least 1");
  if (ctx.threads < 1) throw std::invalid_argument("the thread count must be at least 1");
  if (xs.size() != graph_.inputs.size() || ys.size() != graph_.outputs.size()) {
    throw std::invalid_argument("predict() needs one array per network input and output");
  }
  const FlushDenormals flush;
  Context inference = ctx;
  inference.training = false;
  inference.record = false;
  const std::vector<Shape> out_shapes = output_shapes();
  // The node that may take a network input as R holds it
  // (Layer::forward_from()): one whose only input it is, and its only use.
  const std::size_t n_in = graph_.inputs.size(), none = n_in;
  std::vector<std::size_t> takes_input(graph_.nodes.size(), none);
  for (std::size_t k = 0; k < graph_.nodes.size(); ++k) {
    const std::vector<std::size_t>& from = graph_.nodes[k].inputs;
    if (from.size() == 1 && from[0] < n_in && consumers_[from[0]] == 1) takes_input[k] = from[0];
  }
  // The node that writes output o into R's result itself
  // (Layer::writes_result()): one that computes it for nothing else.
  const std::size_t n_out = graph_.outputs.size(), no_output = n_out;
  std::vector<std::size_t> writes_output(graph_.nodes.size(), no_output);
  std::vector<bool> streams(n_out), written(n_out, false);
  for (std::size_t o = 0; o < n_out; ++o) {
    const std::size_t v = graph_.outputs[o];
    streams[o] = streams_result(static_cast<std::size_t>(n * out_shapes[o].size()) *
                                sizeof(double));
    written[o] = fusable(o) && node_layers_[v - n_in]->writes_result();
    if (written[o]) writes_output[v - n_in] = o;
  }
  std::vector<Tensor<T>>& batch = predict_inputs_;
  batch.resize(xs.size());
  std::vector<DoubleResult> results(n_out);
  for (index_t start = 0; start < n; start += batch_size) {
    const index_t count = std::min(batch_size, n - start);
    current_.assign(n_in + graph_.nodes.size(), nullptr);
    for (std::size_t o = 0; o < n_out; ++o) results[o] = {ys[o] + start, n, streams[o]};
    // Input i's batch in T, converted when a node first needs it.
    auto converted_input = [&](std::size_t i) {
      batch[i].resize(graph_.inputs[i].with_batch(count));
      T* to = batch[i].data.data();
      for_each_run_block(count, graph_.inputs[i].size(), ctx.threads,
                         [&](index_t first, index_t runs) {
        for (index_t f = first; f < first + runs; ++f) {
          convert_values(xs[i] + start + f * n, to + f * count, count);
        }
      });
      current_[i] = &batch[i];
    };
    for (std::size_t k = 0; k < graph_.nodes.size(); ++k) {
      Context node_ctx = inference;
      if (writes_output[k] != no_output) node_ctx.result = &results[writes_output[k]];
      const std::size_t i = takes_input[k];
      if (i != none && node_layers_[k]->forward_from(DoubleBatch{xs[i] + start, n, count},
                                                     values_[k], node_ctx)) {
        current_[n_in + k] = &values_[k];
        continue;
      }
      for (std::size_t v : graph_.nodes[k].inputs) {
        if (current_[v] == nullptr) converted_input(v);
      }
      run_node(k, node_ctx);
    }
    for (std::size_t o = 0; o < n_out; ++o) {
      if (written[o]) continue;
      const std::size_t v = graph_.outputs[o];
      if (current_[v] == nullptr) converted_input(v);
      const T* from = current_[v]->data.data();
      for_each_run_block(count, out_shapes[o].size(), ctx.threads,
                         [&](index_t first, index_t runs) {
        write_result(from + first * count, count, ys[o] + start + first * n, n, count, runs,
                     streams[o]);
        finish_streaming(streams[o]);
      });
    }
  }
}

template class Network<float>;
template class Network<double>;

}  // namespace lcnn
