#include "device_trainer.hpp"

#include <algorithm>

namespace lcnn {

namespace {

// The spec must fit the network; checked before any device memory is used
// (DeviceNetwork checks the network itself).
std::unique_ptr<Network<float>> checked(std::unique_ptr<Network<float>> network,
                                        const TrainingSpec& spec) {
  std::size_t blocks = 0;
  for (std::size_t l = 0; l < network->layer_count(); ++l) {
    blocks += network->layer(l).parameters().size();
  }
  check_training_spec(spec, blocks, network->layer_count(), network->output_shapes());
  return network;
}

std::size_t bytes(std::size_t n) { return n * sizeof(float); }

// A buffer's values written to `to` as doubles, through `host`.
void download_as_doubles(const cuda::Buffer<float>& buffer, std::vector<float>& host, double* to) {
  host.resize(buffer.size());
  buffer.download(host.data(), host.size());
  std::copy(host.begin(), host.end(), to);
}

}  // namespace

DeviceTrainer::DeviceTrainer(std::unique_ptr<Network<float>> network, TrainingSpec spec)
    : host_(checked(std::move(network), spec)),
      spec_(std::move(spec)),
      device_(*host_),
      values_(device_.parameter_values()),
      gradients_(device_.parameter_gradients()) {}

void DeviceTrainer::gather(const DataSet& data, const std::vector<SampleMajor<float>>& copies,
                           const index_t* rows, index_t count, int threads) {
  if (data.xs.size() != 1 || data.ys.size() != 1) {
    throw std::invalid_argument("data need one array per network input and output");
  }
  batch_.x.resize(device_.input_shapes()[0].with_batch(count));
  gather_rows(data.xs[0], data.n, copies.empty() ? nullptr : &copies[0], rows, count, threads,
              batch_.x);
  Shape y_shape = device_.output_shapes()[0].with_batch(count);
  if (is_sparse(spec_.outputs[0].loss)) y_shape.dims.pop_back();
  if (y_shape.rank() == 1) y_shape.dims.push_back(1);
  batch_.y.resize(y_shape);
  gather_rows(data.ys[0], data.n, copies.empty() ? nullptr : &copies[1], rows, count, threads,
              batch_.y);
  batch_.weights.clear();
  if (data.weights != nullptr) {
    for (index_t i = 0; i < count; ++i) batch_.weights.push_back(float(data.weights[rows[i]]));
  }
  batch_.device_x.upload(batch_.x.data.data(), batch_.x.data.size());
}

void DeviceTrainer::forward_backward(const Context& ctx, Totals& totals) {
  const index_t count = batch_.x.batch();
  const OutputSpec& out = spec_.outputs[0];
  DeviceLayer& last = device_.output_layer();
  Context step = ctx;
  step.record = true;
  const float* output = device_.forward(batch_.device_x.data(), count, step);
  batch_.prediction.resize(last.output_shape().with_batch(count));
  cuda::copy_to_host(batch_.prediction.data.data(), output, bytes(batch_.prediction.data.size()));
  // An activity penalty on the output needs the gradient through the
  // activation, so the loss then takes the probabilities.
  const bool fused =
      takes_logits_of(out.loss, last.activation()) && !device_.output_penalized(spec_.activity);
  if (fused) {
    batch_.logits.resize(batch_.prediction.shape);
    cuda::copy_to_host(batch_.logits.data.data(), last.logits(), bytes(batch_.logits.data.size()));
  }
  const float* weights = batch_.weights.empty() ? nullptr : batch_.weights.data();
  Tensor<float>& grad = is_sparse(out.loss) ? batch_.sparse_grad : batch_.y;
  std::size_t metric = 0;
  const double value = output_loss(
      out, 0, batch_.prediction, fused ? batch_.logits : batch_.prediction,
      fused || out.loss.from_logits, batch_.y.data.data(), weights,
      ctx.training ? &grad : nullptr, ctx.threads, totals, metric);
  if (ctx.training) {
    batch_.device_grad.upload(grad.data.data(), grad.data.size());
    device_.backward(batch_.device_x.data(), batch_.device_grad.data(), count, fused,
                     spec_.activity);
  }
  const double penalties = device_.activity_penalty(spec_.activity, count) + penalty(ctx.training);
  totals.loss += (out.weight * value + penalties) * count;
  totals.seen += count;
}

double DeviceTrainer::penalty(bool add_gradient) {
  double total = 0;
  for (std::size_t b = 0; b < values_.size(); ++b) {
    const Penalty& pen = spec_.penalties[b];
    if (!pen.active()) continue;
    const std::int64_t n = static_cast<std::int64_t>(values_[b]->size());
    total += device_penalty(values_[b]->data(), n, pen, penalty_partials_);
    if (add_gradient) {
      cuda::add_penalty_gradient(values_[b]->data(), gradients_[b]->data(), n, float(pen.l1),
                                 float(2 * pen.l2));
    }
  }
  return total;
}

void DeviceTrainer::constrain() {
  for (std::size_t b = 0; b < values_.size(); ++b) {
    const ConstraintSpec& constraint = spec_.constraints[b];
    if (!spec_.trainable[b] || constraint.kind == ConstraintKind::none) continue;
    std::vector<float> host(values_[b]->size());
    values_[b]->download(host.data(), host.size());
    apply_constraint(constraint, host);
    values_[b]->upload(host.data(), host.size());
  }
}

void DeviceTrainer::ensure_slots() {
  const int per_value = slot_count(spec_.optimizer);
  std::vector<std::size_t> sizes;
  for (std::size_t b = 0; b < values_.size(); ++b) {
    if (spec_.trainable[b]) sizes.push_back(values_[b]->size() * per_value);
  }
  bool fits = slots_.size() == sizes.size();
  for (std::size_t b = 0; fits && b < sizes.size(); ++b) fits = slots_[b].size() == sizes[b];
  if (fits) return;
  const float start = spec_.optimizer.kind == OptimizerKind::adagrad
                          ? float(spec_.optimizer.initial_accumulator_value)
                          : 0.0f;
  slots_.clear();
  for (std::size_t size : sizes) {
    const std::vector<float> initial(size, start);
    slots_.emplace_back(size);
    slots_.back().upload(initial.data(), size);
  }
}

void DeviceTrainer::step() {
  ensure_slots();
  iterations_ += 1;
  const UpdateRule<float> rule = update_rule<float>(spec_.optimizer, iterations_);
  for (std::size_t b = 0, trained = 0; b < values_.size(); ++b) {
    if (!spec_.trainable[b]) continue;
    cuda::optimizer_step(rule, values_[b]->data(), gradients_[b]->data(), slots_[trained++].data(),
                         static_cast<std::int64_t>(values_[b]->size()));
  }
}

Scores DeviceTrainer::fit_epoch(const DataSet& data, const std::vector<index_t>& order,
                                index_t batch_size, std::uint64_t seed, const Context& ctx,
                                const Progress& progress, bool& completed) {
  if (batch_size < 1) throw std::invalid_argument("batch_size must be at least 1");
  Totals totals(spec_);
  completed = true;
  // The data's copies go when the epoch ends, however it ends, unless kept.
  struct EndEpoch {
    EpochCopies<float>& copies;
    ~EndEpoch() { copies.end_epoch(); }
  } end_epoch{epoch_copies_};
  const std::vector<SampleMajor<float>>& copies =
      epoch_copies_.for_epoch(data, order, batch_size, ctx.threads);
  const index_t n = static_cast<index_t>(order.size());
  for (index_t start = 0, b = 0; start < n; start += batch_size, ++b) {
    gather(data, copies, order.data() + start, std::min(batch_size, n - start), ctx.threads);
    Context training = ctx;
    training.training = true;
    training.seed = seed + static_cast<std::uint64_t>(b);
    forward_backward(training, totals);
    step();
    constrain();
    if (!progress(b, totals.scores())) {
      completed = false;
      break;
    }
  }
  return totals.scores();
}

Scores DeviceTrainer::evaluate(const DataSet& data, index_t batch_size, const Context& ctx) {
  if (batch_size < 1) throw std::invalid_argument("batch_size must be at least 1");
  Totals totals(spec_);
  std::vector<index_t> rows(static_cast<std::size_t>(data.n));
  for (index_t i = 0; i < data.n; ++i) rows[i] = i;
  for (index_t start = 0; start < data.n; start += batch_size) {
    gather(data, {}, rows.data() + start, std::min(batch_size, data.n - start), ctx.threads);
    Context inference = ctx;
    inference.training = false;
    forward_backward(inference, totals);
  }
  return totals.scores();
}

std::vector<std::vector<double>> DeviceTrainer::gradients(const DataSet& data, std::uint64_t seed,
                                                          const Context& ctx) {
  std::vector<index_t> rows(static_cast<std::size_t>(data.n));
  for (index_t i = 0; i < data.n; ++i) rows[i] = i;
  gather(data, {}, rows.data(), data.n, ctx.threads);
  Totals totals(spec_);
  Context training = ctx;
  training.training = true;
  training.seed = seed;
  forward_backward(training, totals);
  std::vector<std::vector<double>> out;
  std::vector<float> host;
  for (const cuda::Buffer<float>* block : gradients_) {
    out.emplace_back(block->size());
    download_as_doubles(*block, host, out.back().data());
  }
  return out;
}

std::vector<index_t> DeviceTrainer::parameter_sizes() const {
  std::vector<index_t> sizes;
  for (const cuda::Buffer<float>* block : values_) sizes.push_back(block->size());
  return sizes;
}

void DeviceTrainer::copy_parameters(double* const* to) const {
  std::vector<float> host;
  for (std::size_t b = 0; b < values_.size(); ++b) download_as_doubles(*values_[b], host, to[b]);
}

void DeviceTrainer::set_parameters(const std::vector<std::vector<double>>& values) {
  if (values.size() != values_.size()) throw std::invalid_argument("wrong number of blocks");
  for (std::size_t b = 0; b < values_.size(); ++b) {
    if (values[b].size() != values_[b]->size()) {
      throw std::invalid_argument("wrong size of parameter block " + std::to_string(b + 1));
    }
  }
  for (std::size_t b = 0; b < values_.size(); ++b) {
    const std::vector<float> host(values[b].begin(), values[b].end());
    values_[b]->upload(host.data(), host.size());
  }
}

std::vector<index_t> DeviceTrainer::optimizer_slot_sizes() const {
  std::vector<index_t> sizes;
  for (const cuda::Buffer<float>& slot : slots_) sizes.push_back(slot.size());
  return sizes;
}

void DeviceTrainer::copy_optimizer_slots(void* const* to) const {
  for (std::size_t k = 0; k < slots_.size(); ++k) {
    slots_[k].download(static_cast<float*>(to[k]), slots_[k].size());
  }
}

void DeviceTrainer::restore_optimizer(double iterations, const std::vector<ValueBytes>& slots) {
  const std::vector<std::vector<float>> host = slot_values<float>(slots);
  iterations_ = iterations;
  slots_.clear();
  for (const std::vector<float>& slot : host) {
    slots_.emplace_back(slot.size());
    slots_.back().upload(slot.data(), slot.size());
  }
}

}  // namespace lcnn
