#include "trainer.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

namespace lcnn {

template <typename T>
Trainer<T>::Trainer(std::unique_ptr<Network<T>> network, TrainingSpec spec)
    : network_(std::move(network)), spec_(std::move(spec)), optimizer_(spec_.optimizer) {
  for (std::size_t i = 0; i < network_->size(); ++i) {
    for (ParameterBlock<T>& block : network_->layer(i).parameters()) blocks_.push_back(&block);
  }
  if (spec_.trainable.size() != blocks_.size() || spec_.penalties.size() != blocks_.size() ||
      spec_.constraints.size() != blocks_.size()) {
    throw std::invalid_argument(
        "training spec needs one trainable flag, penalty and constraint per block");
  }
  if (!spec_.activity.empty() && spec_.activity.size() != network_->size()) {
    throw std::invalid_argument("training spec needs one activity penalty per layer");
  }
}

template <typename T>
void Trainer<T>::gather(const DataSet& data, const index_t* rows, index_t count,
                        Batch& batch) const {
  batch.x.resize(network_->input_shape().with_batch(count));
  Shape y_shape = network_->output_shape().with_batch(count);
  if (is_sparse(spec_.loss)) y_shape.dims.pop_back();
  if (y_shape.rank() == 1) y_shape.dims.push_back(1);
  batch.y.resize(y_shape);
  if (data.x_features * count != batch.x.shape.size() ||
      data.y_features * count != batch.y.shape.size()) {
    throw std::invalid_argument("data do not match the network's input and output shapes");
  }
  auto copy = [&](const double* from, index_t features, T* to) {
    for (index_t f = 0; f < features; ++f) {
      for (index_t i = 0; i < count; ++i) to[f * count + i] = T(from[f * data.n + rows[i]]);
    }
  };
  copy(data.x, data.x_features, batch.x.data.data());
  copy(data.y, data.y_features, batch.y.data.data());
  batch.weights.clear();
  if (data.weights != nullptr) {
    for (index_t i = 0; i < count; ++i) batch.weights.push_back(T(data.weights[rows[i]]));
  }
}

template <typename T>
double Trainer<T>::penalty(bool add_gradient) {
  double penalty = 0;
  for (std::size_t b = 0; b < blocks_.size(); ++b) {
    const Penalty& pen = spec_.penalties[b];
    if (pen.l1 == 0 && pen.l2 == 0) continue;
    std::vector<T>& w = blocks_[b]->values;
    std::vector<T>& g = blocks_[b]->gradient;
    for (std::size_t i = 0; i < w.size(); ++i) {
      penalty += pen.l1 * std::abs(double(w[i])) + pen.l2 * double(w[i]) * double(w[i]);
      if (!add_gradient) continue;
      const T sign = w[i] > 0 ? T(1) : w[i] < 0 ? T(-1) : T(0);
      g[i] += T(pen.l1) * sign + T(2 * pen.l2) * w[i];
    }
  }
  return penalty;
}

template <typename T>
double Trainer<T>::forward_backward(Batch& batch, const Context& ctx,
                                    std::vector<double>& totals, std::vector<double>& counts) {
  const Tensor<T>& out = network_->forward(batch.x, ctx);
  Layer<T>& last = network_->layer(network_->size() - 1);
  // An activity penalty on the output needs the gradient through the
  // activation, so the loss then takes the probabilities.
  const bool output_penalized =
      !spec_.activity.empty() && spec_.activity.back().active();
  const bool fused = takes_logits_of(spec_.loss, last.activation()) && !output_penalized;
  const Tensor<T>& loss_input = fused ? *last.logits() : out;
  const T* weights = batch.weights.empty() ? nullptr : batch.weights.data();
  Tensor<T> grad;
  double loss = loss_and_gradient(spec_.loss, fused || spec_.loss.from_logits, loss_input,
                                  batch.y.data.data(), weights, grad);
  for (std::size_t m = 0; m < spec_.metrics.size(); ++m) {
    accumulate_metric(spec_.metrics[m], out, batch.y.data.data(), weights, totals[m], counts[m]);
  }
  if (ctx.training) network_->backward(batch.x, grad, nullptr, ctx, fused, spec_.activity);
  return loss + network_->activity_penalty(spec_.activity) + penalty(ctx.training);
}

namespace {

Scores running_scores(double loss_sum, index_t seen, const std::vector<double>& totals,
                      const std::vector<double>& counts) {
  Scores s;
  s.loss = seen > 0 ? loss_sum / seen : 0;
  for (std::size_t m = 0; m < totals.size(); ++m) {
    s.metrics.push_back(counts[m] > 0 ? totals[m] / counts[m] : 0);
  }
  return s;
}

}  // namespace

template <typename T>
Scores Trainer<T>::fit_epoch(const DataSet& data, const std::vector<index_t>& order,
                             index_t batch_size, std::uint64_t seed, const Context& ctx,
                             const Progress& progress, bool& completed) {
  if (batch_size < 1) throw std::invalid_argument("batch_size must be at least 1");
  std::vector<ParameterBlock<T>*> trained;
  for (std::size_t b = 0; b < blocks_.size(); ++b) {
    if (spec_.trainable[b]) trained.push_back(blocks_[b]);
  }
  Batch batch;
  std::vector<double> totals(spec_.metrics.size(), 0), counts(spec_.metrics.size(), 0);
  double loss_sum = 0;
  index_t seen = 0;
  completed = true;
  const index_t n = static_cast<index_t>(order.size());
  for (index_t start = 0, b = 0; start < n; start += batch_size, ++b) {
    const index_t count = std::min(batch_size, n - start);
    gather(data, order.data() + start, count, batch);
    Context step = ctx;
    step.training = true;
    step.record = true;
    step.seed = seed + static_cast<std::uint64_t>(b);
    const double loss = forward_backward(batch, step, totals, counts);
    optimizer_.step(trained, ctx.threads);
    for (std::size_t k = 0; k < blocks_.size(); ++k) {
      if (spec_.trainable[k]) apply_constraint(spec_.constraints[k], blocks_[k]->values);
    }
    loss_sum += loss * count;
    seen += count;
    if (!progress(b, running_scores(loss_sum, seen, totals, counts))) {
      completed = false;
      break;
    }
  }
  return running_scores(loss_sum, seen, totals, counts);
}

template <typename T>
Scores Trainer<T>::evaluate(const DataSet& data, index_t batch_size, const Context& ctx) {
  if (batch_size < 1) throw std::invalid_argument("batch_size must be at least 1");
  Batch batch;
  std::vector<double> totals(spec_.metrics.size(), 0), counts(spec_.metrics.size(), 0);
  std::vector<index_t> rows(static_cast<std::size_t>(data.n));
  for (index_t i = 0; i < data.n; ++i) rows[i] = i;
  double loss_sum = 0;
  for (index_t start = 0; start < data.n; start += batch_size) {
    const index_t count = std::min(batch_size, data.n - start);
    gather(data, rows.data() + start, count, batch);
    Context step = ctx;
    step.training = false;
    step.record = true;
    loss_sum += forward_backward(batch, step, totals, counts) * count;
  }
  return running_scores(loss_sum, data.n, totals, counts);
}

template <typename T>
std::vector<std::vector<double>> Trainer<T>::gradients(const DataSet& data, std::uint64_t seed,
                                                       const Context& ctx) {
  std::vector<index_t> rows(static_cast<std::size_t>(data.n));
  for (index_t i = 0; i < data.n; ++i) rows[i] = i;
  Batch batch;
  gather(data, rows.data(), data.n, batch);
  std::vector<double> totals(spec_.metrics.size(), 0), counts(spec_.metrics.size(), 0);
  Context step = ctx;
  step.training = true;
  step.record = true;
  step.seed = seed;
  forward_backward(batch, step, totals, counts);
  std::vector<std::vector<double>> out;
  for (const ParameterBlock<T>* block : blocks_) {
    out.emplace_back(block->gradient.begin(), block->gradient.end());
  }
  return out;
}

template <typename T>
std::vector<std::vector<double>> Trainer<T>::parameters() const {
  std::vector<std::vector<double>> out;
  for (const ParameterBlock<T>* block : blocks_) {
    out.emplace_back(block->values.begin(), block->values.end());
  }
  return out;
}

template <typename T>
void Trainer<T>::set_parameters(const std::vector<std::vector<double>>& values) {
  if (values.size() != blocks_.size()) throw std::invalid_argument("wrong number of blocks");
  for (std::size_t b = 0; b < blocks_.size(); ++b) {
    if (values[b].size() != blocks_[b]->values.size()) {
      throw std::invalid_argument("wrong size of parameter block " + std::to_string(b + 1));
    }
    std::transform(values[b].begin(), values[b].end(), blocks_[b]->values.begin(),
                   [](double v) { return T(v); });
  }
}

template <typename T>
std::vector<std::vector<double>> Trainer<T>::optimizer_slots() const {
  std::vector<std::vector<double>> out;
  for (const std::vector<T>& slot : optimizer_.slots()) out.emplace_back(slot.begin(), slot.end());
  return out;
}

template <typename T>
void Trainer<T>::restore_optimizer(double iterations,
                                   const std::vector<std::vector<double>>& slots) {
  std::vector<std::vector<T>> converted;
  for (const std::vector<double>& slot : slots) converted.emplace_back(slot.begin(), slot.end());
  optimizer_.restore(iterations, std::move(converted));
}

template class Trainer<float>;
template class Trainer<double>;

}  // namespace lcnn
