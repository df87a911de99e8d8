#include "trainer.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <stdexcept>
#include <utility>

#include "convert.hpp"
#include "gemm.hpp"
#include "parallel.hpp"
#include "penalty_formula.hpp"

namespace lcnn {

namespace {

// At most this many values per parallel block when gathering a batch.
constexpr index_t kGatherBlockValues = 16384;
// At most this many values per block of a batch gathered in the
// background: a thread that runs a block joins the next region only
// once the block is done (W7: 32 features of 64 samples, about 2 µs).
constexpr index_t kBackgroundGatherValues = 2048;
// Samples a gather from a sample-major copy takes at a time: each feature's
// values of the group are then written as one run of two cache lines
// rather than one value per line (bench/NOTES.md).
constexpr index_t kGatherGroup = 32;
// Samples per parallel block of a sample-major copy.
constexpr index_t kSampleMajorBlock = 1024;

// Adds the gradient of `pen` at w[0, count) to g[0, count).
template <typename T>
void add_penalty_gradient(const Penalty& pen, const T* w, T* g, index_t count) {
  if (!pen.active()) return;
  for (index_t i = 0; i < count; ++i) g[i] += penalty_gradient(w[i], T(pen.l1), T(2 * pen.l2));
}

}  // namespace

template <typename T>
Trainer<T>::Trainer(std::unique_ptr<Network<T>> network, TrainingSpec spec)
    : network_(std::move(network)), spec_(std::move(spec)), optimizer_(spec_.optimizer) {
  for (std::size_t l = 0; l < network_->layer_count(); ++l) {
    layer_updates_.emplace_back(*this, blocks_.size());
    for (ParameterBlock<T>& block : network_->layer(l).parameters()) blocks_.push_back(&block);
  }
  check_training_spec(spec_, blocks_.size(), network_->layer_count(),
                      network_->output_shapes());
  trained_index_.assign(blocks_.size(), 0);
  for (std::size_t b = 0; b < blocks_.size(); ++b) {
    trained_index_[b] = trained_.size();
    if (spec_.trainable[b]) trained_.push_back(blocks_[b]);
  }
  updated_in_backward_.assign(blocks_.size(), false);
  // Fixed for the trainer's life: which layers may take the update.
  for (std::size_t l = 0, first = 0; l < network_->layer_count(); ++l) {
    const std::size_t n_blocks = network_->layer(l).parameters().size();
    bool eligible = n_blocks > 0 && !network_->shared(l);
    for (std::size_t b = first; b < first + n_blocks; ++b) eligible = eligible && spec_.trainable[b];
    may_update_in_backward_.push_back(eligible);
    first += n_blocks;
  }
}

void check_training_spec(const TrainingSpec& spec, std::size_t blocks, std::size_t layers,
                         const std::vector<Shape>& output_shapes) {
  if (spec.trainable.size() != blocks || spec.penalties.size() != blocks ||
      spec.constraints.size() != blocks) {
    throw std::invalid_argument(
        "training spec needs one trainable flag, penalty and constraint per block");
  }
  if (!spec.activity.empty() && spec.activity.size() != layers) {
    throw std::invalid_argument("training spec needs one activity penalty per layer");
  }
  if (spec.outputs.size() != output_shapes.size()) {
    throw std::invalid_argument("training spec needs one loss per network output");
  }
  for (std::size_t o = 0; o < output_shapes.size(); ++o) {
    for (MetricKind metric : spec.outputs[o].metrics) {
      check_metric_targets(metric, spec.outputs[o].loss, output_shapes[o].dims.back());
    }
  }
}

namespace {

bool consecutive(const index_t* rows, index_t count) {
  return count > 0 && std::adjacent_find(rows, rows + count, [](index_t a, index_t b) {
                        return b != a + 1;
                      }) == rows + count;
}

}  // namespace

template <typename T>
SampleMajor<T> sample_major(const Array& from, index_t n, int threads) {
  SampleMajor<T> copy;
  if (n < 1) return copy;
  const index_t features = from.size / n;
  copy.features = features;
  copy.values = BlockArray<T>(static_cast<std::size_t>(from.size));
  std::atomic<bool> not_finite{false};
  for_each_block(n, kSampleMajorBlock, threads, [&](index_t first, index_t count) {
    if (sample_major_rows(from.data + first, n, count, copy.values.data() + first * features,
                          features)) {
      not_finite.store(true, std::memory_order_relaxed);
    }
  });
  copy.not_finite = not_finite.load();
  return copy;
}

namespace {

// Whether an epoch that takes the samples in `order`, batch_size at a time,
// gathers its batches from sample-major copies (see EpochCopies).
bool gathers_from_copies(const std::vector<index_t>& order, index_t batch_size) {
  const index_t n = static_cast<index_t>(order.size());
  if (n <= batch_size) return false;
  for (index_t start = 0; start < n; start += batch_size) {
    if (!consecutive(order.data() + start, std::min(batch_size, n - start))) return true;
  }
  return false;
}

template <typename T>
std::vector<SampleMajor<T>> sample_major_copies(const DataSet& data, int threads) {
  std::vector<SampleMajor<T>> copies;
  for (const Array& x : data.xs) copies.push_back(sample_major<T>(x, data.n, threads));
  for (const Array& y : data.ys) copies.push_back(sample_major<T>(y, data.n, threads));
  return copies;
}

}  // namespace

template <typename T>
std::vector<Array> EpochCopies<T>::arrays_of(const DataSet& data) {
  std::vector<Array> arrays = data.xs;
  arrays.insert(arrays.end(), data.ys.begin(), data.ys.end());
  return arrays;
}

template <typename T>
const std::vector<SampleMajor<T>>& EpochCopies<T>::for_epoch(const DataSet& data,
                                                             const std::vector<index_t>& order,
                                                             index_t batch_size, int threads) {
  if (!gathers_from_copies(order, batch_size)) return none_;
  make(data, threads);
  return copies_;
}

template <typename T>
std::vector<bool> EpochCopies<T>::prepare(const DataSet& data, int threads) {
  make(data, threads);
  std::vector<bool> not_finite;
  for (const SampleMajor<T>& copy : copies_) not_finite.push_back(copy.not_finite);
  if (std::find(not_finite.begin(), not_finite.end(), true) != not_finite.end()) release();
  return not_finite;
}

template <typename T>
void EpochCopies<T>::take(EpochCopies& other) {
  if (&other == this) return;
  release();
  copies_ = std::move(other.copies_);
  sources_ = std::move(other.sources_);
  samples_ = other.samples_;
  other.release();
}

template <typename T>
void EpochCopies<T>::make(const DataSet& data, int threads) {
  const std::vector<Array> sources = arrays_of(data);
  const auto same = [](const Array& a, const Array& b) {
    return a.data == b.data && a.size == b.size;
  };
  const bool made_from_these =
      !copies_.empty() && samples_ == data.n && sources.size() == sources_.size() &&
      std::equal(sources.begin(), sources.end(), sources_.begin(), same);
  if (made_from_these) return;
  release();  // before the new copies: both would otherwise be held at once
  copies_ = sample_major_copies<T>(data, threads);
  sources_ = sources;
  samples_ = data.n;
}

template <typename T>
void EpochCopies<T>::end_epoch() {
  if (!keep_) release();
}

template <typename T>
void EpochCopies<T>::keep(bool on) {
  keep_ = on;
  if (!on) release();
}

template <typename T>
void EpochCopies<T>::release() {
  copies_.clear();
  sources_.clear();
  samples_ = 0;
}

namespace {

void check_features(const Array& from, index_t n, index_t features) {
  if (from.size != features * n) {
    throw std::invalid_argument("data do not match the network's input and output shapes");
  }
}

// Every block of a gather (RowGather, Trainer::BatchGather) on `threads` threads.
template <typename Gather>
void run_blocks(const Gather& gather, int threads) {
  parallel_region(gather.blocks(), threads, [&](WorkItems& items) {
    for (index_t block; items.next(block);) gather.run(block);
  });
}

}  // namespace

template <typename T>
RowGather<T>::RowGather(const Array& from, index_t n, const SampleMajor<T>* copy,
                        const index_t* rows, index_t count, Tensor<T>& to,
                        index_t block_values)
    : from_(&from), n_(n), copy_(copy), rows_(rows), count_(count), to_(to.data.data()),
      features_(to.shape.size() / count), runs_(consecutive(rows, count)) {
  check_features(from, n, features_);
  // Blocks of equal size: W7's 784 features in blocks of 256, 256, 256 and
  // 16 left one of two threads idle for nearly half of the gather.
  const index_t most = std::max<index_t>(1, block_values / std::max<index_t>(1, count));
  blocks_ = std::max<index_t>(1, (features_ + most - 1) / most);
  block_ = std::max<index_t>(1, (features_ + blocks_ - 1) / blocks_);
  blocks_ = (features_ + block_ - 1) / block_;
}

template <typename T>
void RowGather<T>::run(index_t block) const {
  const index_t first = block * block_, last = std::min(features_, first + block_);
  const index_t count = count_;
  const double* const from = from_->data;
  T* const batch = to_;
  if (runs_) {
    for (index_t f = first; f < last; ++f) {
      convert_values(from + f * n_ + rows_[0], batch + f * count, count);
    }
  } else if (copy_ != nullptr) {
    for (index_t i0 = 0; i0 < count; i0 += kGatherGroup) {
      const index_t group = std::min(kGatherGroup, count - i0);
      const T* samples[kGatherGroup];
      for (index_t i = 0; i < group; ++i) {
        samples[i] = copy_->values.data() + rows_[i0 + i] * features_;
      }
      for (index_t f = first; f < last; ++f) {
        T* const run = batch + f * count + i0;
        for (index_t i = 0; i < group; ++i) run[i] = samples[i][f];
      }
    }
  } else {
    for (index_t f = first; f < last; ++f) {
      for (index_t i = 0; i < count; ++i) batch[f * count + i] = T(from[f * n_ + rows_[i]]);
    }
  }
}

template <typename T>
void gather_rows(const Array& from, index_t n, const SampleMajor<T>* copy, const index_t* rows,
                 index_t count, int threads, Tensor<T>& to) {
  run_blocks(RowGather<T>(from, n, copy, rows, count, to, kGatherBlockValues), threads);
}

template <typename T>
index_t Trainer<T>::BatchGather::blocks() const {
  index_t total = 0;
  for (const RowGather<T>& part : parts) total += part.blocks();
  return total;
}

template <typename T>
void Trainer<T>::BatchGather::run(index_t block) const {
  for (const RowGather<T>& part : parts) {
    if (block < part.blocks()) return part.run(block);
    block -= part.blocks();
  }
}

template <typename T>
typename Trainer<T>::BatchGather Trainer<T>::plan_gather(
    const DataSet& data, const std::vector<SampleMajor<T>>& copies, const index_t* rows,
    index_t count, index_t block_values, Batch& batch) const {
  const std::vector<Shape> inputs = network_->input_shapes(), outputs = network_->output_shapes();
  if (data.xs.size() != inputs.size() || data.ys.size() != outputs.size()) {
    throw std::invalid_argument("data need one array per network input and output");
  }
  BatchGather gather;
  // Array a: input a, or output a - inputs.size().
  auto copy = [&](std::size_t a, const Array& from, Tensor<T>& to) {
    gather.parts.emplace_back(from, data.n, copies.empty() ? nullptr : &copies[a], rows, count,
                              to, block_values);
  };
  batch.xs.resize(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    batch.xs[i].resize(inputs[i].with_batch(count));
    copy(i, data.xs[i], batch.xs[i]);
  }
  // A batch of the whole data, in order, reads its targets in place: they
  // are then laid out as a batch tensor's, and copying them would cost about
  // what the loss's own pass over them does. Runs of samples out of more
  // (strided in R's arrays) are copied: the loss reading them in place was
  // slower than the copy (bench/NOTES.md).
  const bool in_data = consecutive(rows, count) && count == data.n;
  batch.ys.resize(outputs.size());
  batch.ys_in_data.clear();
  for (std::size_t o = 0; o < outputs.size(); ++o) {
    Shape y_shape = outputs[o].with_batch(count);
    if (is_sparse(spec_.outputs[o].loss)) y_shape.dims.pop_back();
    if (in_data) {
      check_features(data.ys[o], data.n, y_shape.size() / count);
      batch.ys_in_data.push_back(data.ys[o].data);
      continue;
    }
    if (y_shape.rank() == 1) y_shape.dims.push_back(1);
    batch.ys[o].resize(y_shape);
    copy(inputs.size() + o, data.ys[o], batch.ys[o]);
  }
  batch.weights.clear();
  if (data.weights != nullptr) {
    for (index_t i = 0; i < count; ++i) batch.weights.push_back(T(data.weights[rows[i]]));
  }
  return gather;
}

template <typename T>
void Trainer<T>::gather(const DataSet& data, const std::vector<SampleMajor<T>>& copies,
                        const index_t* rows, index_t count, int threads, Batch& batch) const {
  run_blocks(plan_gather(data, copies, rows, count, kGatherBlockValues, batch), threads);
}

template <typename T>
double Trainer<T>::penalty() const {
  double penalty = 0;
  for (std::size_t b = 0; b < blocks_.size(); ++b) {
    const Penalty& pen = spec_.penalties[b];
    if (!pen.active()) continue;
    for (const T w : blocks_[b]->values) {
      penalty += pen.l1 * std::abs(double(w)) + pen.l2 * double(w) * double(w);
    }
  }
  return penalty;
}

template <typename T>
void Trainer<T>::add_penalty_gradients() {
  for (std::size_t b = 0; b < blocks_.size(); ++b) {
    if (updated_in_backward_[b]) continue;
    add_penalty_gradient(spec_.penalties[b], blocks_[b]->values.data(),
                         blocks_[b]->gradient.data(),
                         static_cast<index_t>(blocks_[b]->gradient.size()));
  }
}

template <typename T>
void Trainer<T>::update_part(std::size_t b, index_t start, index_t count, T* gradient) {
  add_penalty_gradient(spec_.penalties[b], blocks_[b]->values.data() + start, gradient, count);
  optimizer_.update(trained_index_[b], start, count, gradient);
}

template <typename T>
void Trainer<T>::offer_updates(bool fuse) {
  for (std::size_t l = 0, first = 0; l < network_->layer_count(); ++l) {
    Layer<T>& layer = network_->layer(l);
    const std::size_t n_blocks = layer.parameters().size();
    const bool offered = fuse && may_update_in_backward_[l];
    const bool updates = layer.update_in_backward(offered ? &layer_updates_[l] : nullptr);
    for (std::size_t b = first; b < first + n_blocks; ++b) updated_in_backward_[b] = updates;
    first += n_blocks;
  }
}

template <typename T>
void Trainer<T>::after_update() {
  for (std::size_t k = 0; k < blocks_.size(); ++k) {
    if (spec_.trainable[k]) apply_constraint(spec_.constraints[k], blocks_[k]->values);
  }
  network_->share_parameters();
}

Totals::Totals(const TrainingSpec& spec) {
  output_losses.assign(spec.outputs.size(), 0);
  std::size_t n_metrics = 0;
  for (const OutputSpec& o : spec.outputs) n_metrics += o.metrics.size();
  metrics.assign(n_metrics, 0);
  counts.assign(n_metrics, 0);
}

Scores Totals::scores() const {
  Scores s;
  const double samples = double(std::max<index_t>(seen, 1));
  s.loss = loss / samples;
  for (double l : output_losses) s.output_losses.push_back(l / samples);
  for (std::size_t m = 0; m < metrics.size(); ++m) {
    s.metrics.push_back(counts[m] > 0 ? metrics[m] / counts[m] : 0);
  }
  return s;
}

template <typename T, typename X>
double output_loss(const OutputSpec& out, std::size_t o, const Tensor<T>& prediction,
                   const Tensor<T>& loss_input, bool logits, const X* target,
                   const T* weights, Tensor<T>* grad, int threads, Totals& totals,
                   std::size_t& metric) {
  for (MetricKind m : out.metrics) {
    accumulate_metric(m, prediction, target, weights, totals.metrics[metric],
                      totals.counts[metric]);
    ++metric;
  }
  const double value =
      loss_and_gradient(out.loss, logits, loss_input, target, weights, grad, threads);
  if (grad != nullptr && out.weight != 1) {
    for (T& g : grad->data) g *= T(out.weight);
  }
  totals.output_losses[o] += value * prediction.batch();
  return value;
}

template <typename T>
void Trainer<T>::forward_backward(Batch& batch, const Context& ctx, Totals& totals) {
  std::vector<const Tensor<T>*> inputs;
  for (const Tensor<T>& x : batch.xs) inputs.push_back(&x);
  const std::vector<const Tensor<T>*> outs = network_->forward(inputs, ctx);
  const T* weights = batch.weights.empty() ? nullptr : batch.weights.data();
  const index_t count = batch.xs.front().batch();
  std::vector<Tensor<T>>& grads = output_grads_;
  grads.resize(outs.size());
  std::vector<const Tensor<T>*> grad_ptrs;
  std::vector<bool> fused(outs.size(), false);
  double loss = 0;
  std::size_t metric = 0;
  for (std::size_t o = 0; o < outs.size(); ++o) {
    const OutputSpec& out = spec_.outputs[o];
    const Layer<T>* layer = network_->output_layer(o);
    // An activity penalty on the output needs the gradient through the
    // activation, so the loss then takes the probabilities.
    const bool penalized = layer != nullptr && !spec_.activity.empty() &&
                           spec_.activity[network_->output_layer_index(o)].active();
    fused[o] = layer != nullptr && network_->fusable(o) && !penalized &&
               takes_logits_of(out.loss, layer->activation());
    const Tensor<T>& loss_input = fused[o] ? *layer->logits() : *outs[o];
    const bool logits = fused[o] || out.loss.from_logits;
    // An elementwise loss writes its gradient over the output where
    // nothing reads that after the loss (the sweep loads each value before
    // it stores its gradient): the lines are then in cache already, where
    // a tensor of its own would first be read for the write (bench/NOTES.md).
    // Else a dense gradient takes the place of the batch's targets, which
    // are not needed after the loss (or were read in place): that saves an
    // output-sized tensor. Evaluation computes the loss alone.
    Tensor<T>* const over_output =
        ctx.training && is_elementwise(out.loss.kind)
            ? network_->output_for_gradient(o, fused[o], spec_.activity)
            : nullptr;
    Tensor<T>* const grad = !ctx.training             ? nullptr
                            : over_output != nullptr ? over_output
                            : is_sparse(out.loss)    ? &grads[o]
                                                     : &batch.ys[o];
    const double value =
        batch.ys_in_data.empty()
            ? output_loss(out, o, *outs[o], loss_input, logits, batch.ys[o].data.data(),
                          weights, grad, ctx.threads, totals, metric)
            : output_loss(out, o, *outs[o], loss_input, logits, batch.ys_in_data[o], weights,
                          grad, ctx.threads, totals, metric);
    loss += out.weight * value;
    grad_ptrs.push_back(grad);
  }
  // Before backward(), which may update the weights.
  const double weight_penalty = penalty();
  if (ctx.training) {
    network_->backward(inputs, grad_ptrs, fused, ctx, spec_.activity);
    add_penalty_gradients();
  }
  loss += network_->activity_penalty(spec_.activity) + weight_penalty;
  totals.loss += loss * count;
  totals.seen += count;
}

template <typename T>
Scores Trainer<T>::fit_epoch(const DataSet& data, const std::vector<index_t>& order,
                             index_t batch_size, std::uint64_t seed, const Context& ctx,
                             const Progress& progress, bool& completed) {
  if (batch_size < 1) throw std::invalid_argument("batch_size must be at least 1");
  // When the epoch ends, however it ends, layers stop applying updates and
  // the data's copies go unless kept.
  struct EndEpoch {
    Trainer& trainer;
    ~EndEpoch() {
      trainer.offer_updates(false);
      trainer.epoch_copies_.end_epoch();
    }
  } end_epoch{*this};
  const std::vector<SampleMajor<T>>& copies =
      epoch_copies_.for_epoch(data, order, batch_size, ctx.threads);
  Batch& batch = batch_;
  Totals totals(spec_);
  completed = true;
  const index_t n = static_cast<index_t>(order.size());
  bool gathered = false;  // whether next_batch_ holds this step's batch
  for (index_t start = 0, b = 0; start < n; start += batch_size, ++b) {
    {
      // Not around progress(), which runs R code.
      const FlushDenormals flush;
      const index_t count = std::min(batch_size, n - start);
      if (gathered) {
        std::swap(batch, next_batch_);
      } else {
        gather(data, copies, order.data() + start, count, ctx.threads, batch);
      }
      // The next step's batch, gathered by the other threads while they
      // would wait (BackgroundItems), and finished before the step ends.
      const index_t next = start + batch_size;
      gathered = ctx.threads > 1 && next < n;
      const BatchGather ahead =
          gathered ? plan_gather(data, copies, order.data() + next,
                                 std::min(batch_size, n - next), kBackgroundGatherValues,
                                 next_batch_)
                   : BatchGather();
      BackgroundItems background(ahead.blocks(), ctx.threads,
                                 [&ahead](index_t block) { ahead.run(block); });
      Context step = ctx;
      step.training = true;
      step.record = true;
      step.seed = seed + static_cast<std::uint64_t>(b);
      optimizer_.prepare(trained_);
      // Updates made in backward() cannot be taken back, so layers make
      // them only after a step at least this large on as many threads: the
      // buffers backward() uses (gradients of each value, per-thread
      // scratch) then exist already, and a step fails, if at all, before
      // its first update.
      offer_updates(count <= largest_batch_ && ctx.threads <= most_threads_);
      forward_backward(batch, step, totals);
      for (std::size_t b = 0; b < blocks_.size(); ++b) {
        if (spec_.trainable[b] && !updated_in_backward_[b]) {
          optimizer_.update_block(trained_index_[b], ctx.threads);
        }
      }
      optimizer_.finish_step();
      largest_batch_ = std::max(largest_batch_, count);
      most_threads_ = std::max(most_threads_, ctx.threads);
      after_update();
      background.finish();
    }
    if (!progress(b, totals.scores())) {
      completed = false;
      break;
    }
  }
  return totals.scores();
}

template <typename T>
Scores Trainer<T>::evaluate(const DataSet& data, index_t batch_size, const Context& ctx) {
  if (batch_size < 1) throw std::invalid_argument("batch_size must be at least 1");
  const FlushDenormals flush;
  Batch& batch = batch_;
  Totals totals(spec_);
  std::vector<index_t> rows(static_cast<std::size_t>(data.n));
  for (index_t i = 0; i < data.n; ++i) rows[i] = i;
  for (index_t start = 0; start < data.n; start += batch_size) {
    const index_t count = std::min(batch_size, data.n - start);
    gather(data, {}, rows.data() + start, count, ctx.threads, batch);
    Context step = ctx;
    step.training = false;
    step.record = true;
    forward_backward(batch, step, totals);
  }
  return totals.scores();
}

template <typename T>
std::vector<std::vector<double>> Trainer<T>::gradients(const DataSet& data, std::uint64_t seed,
                                                       const Context& ctx) {
  const FlushDenormals flush;
  std::vector<index_t> rows(static_cast<std::size_t>(data.n));
  for (index_t i = 0; i < data.n; ++i) rows[i] = i;
  Batch batch;
  gather(data, {}, rows.data(), data.n, ctx.threads, batch);
  Totals totals(spec_);
  Context step = ctx;
  step.training = true;
  step.record = true;
  step.seed = seed;
  forward_backward(batch, step, totals);
  std::vector<std::vector<double>> out;
  for (const ParameterBlock<T>* block : blocks_) {
    out.emplace_back(block->gradient.begin(), block->gradient.end());
  }
  return out;
}

namespace {

// Blocks of the given sizes, filled by copy() (TrainerBase::copy_parameters()).
template <typename Copy>
std::vector<std::vector<double>> copied_blocks(const std::vector<index_t>& sizes, Copy copy) {
  std::vector<std::vector<double>> out;
  std::vector<double*> to;
  for (index_t size : sizes) out.emplace_back(static_cast<std::size_t>(size));
  for (std::vector<double>& block : out) to.push_back(block.data());
  copy(to.data());
  return out;
}

}  // namespace

std::vector<std::vector<double>> TrainerBase::parameters() const {
  return copied_blocks(parameter_sizes(), [&](double* const* to) { copy_parameters(to); });
}

std::vector<std::vector<double>> TrainerBase::optimizer_slots() const {
  const std::vector<index_t> sizes = optimizer_slot_sizes();
  std::vector<std::vector<unsigned char>> bytes;
  std::vector<void*> to;
  for (index_t size : sizes) bytes.emplace_back(static_cast<std::size_t>(size) * value_bytes());
  for (std::vector<unsigned char>& slot : bytes) to.push_back(slot.data());
  copy_optimizer_slots(to.data());
  std::vector<std::vector<double>> out;
  for (std::size_t k = 0; k < sizes.size(); ++k) {
    if (value_bytes() == sizeof(float)) {
      const float* values = reinterpret_cast<const float*>(bytes[k].data());
      out.emplace_back(values, values + sizes[k]);
    } else {
      const double* values = reinterpret_cast<const double*>(bytes[k].data());
      out.emplace_back(values, values + sizes[k]);
    }
  }
  return out;
}

template <typename T>
std::vector<std::vector<T>> slot_values(const std::vector<ValueBytes>& slots) {
  std::vector<std::vector<T>> out;
  for (std::size_t k = 0; k < slots.size(); ++k) {
    if (slots[k].size % sizeof(T) != 0) {
      throw std::invalid_argument("optimizer slot " + std::to_string(k + 1) + " has " +
                                  std::to_string(slots[k].size) + " bytes, not whole values of " +
                                  std::to_string(sizeof(T)));
    }
    const T* values = static_cast<const T*>(slots[k].data);
    out.emplace_back(values, values + slots[k].size / sizeof(T));
  }
  return out;
}

template <typename T>
std::vector<index_t> Trainer<T>::parameter_sizes() const {
  std::vector<index_t> sizes;
  for (const ParameterBlock<T>* block : blocks_) sizes.push_back(block->values.size());
  return sizes;
}

template <typename T>
void Trainer<T>::copy_parameters(double* const* to) const {
  for (std::size_t b = 0; b < blocks_.size(); ++b) {
    std::copy(blocks_[b]->values.begin(), blocks_[b]->values.end(), to[b]);
  }
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
  network_->share_parameters();
}

template <typename T>
std::vector<index_t> Trainer<T>::optimizer_slot_sizes() const {
  std::vector<index_t> sizes;
  for (const std::vector<T>& slot : optimizer_.slots()) sizes.push_back(slot.size());
  return sizes;
}

template <typename T>
void Trainer<T>::copy_optimizer_slots(void* const* to) const {
  const std::vector<std::vector<T>>& slots = optimizer_.slots();
  for (std::size_t k = 0; k < slots.size(); ++k) {
    std::copy(slots[k].begin(), slots[k].end(), static_cast<T*>(to[k]));
  }
}

template <typename T>
void Trainer<T>::restore_optimizer(double iterations, const std::vector<ValueBytes>& slots) {
  optimizer_.restore(iterations, slot_values<T>(slots));
}

template std::vector<std::vector<float>> slot_values<float>(const std::vector<ValueBytes>&);
template std::vector<std::vector<double>> slot_values<double>(const std::vector<ValueBytes>&);
template SampleMajor<float> sample_major<float>(const Array&, index_t, int);
template SampleMajor<double> sample_major<double>(const Array&, index_t, int);
template class EpochCopies<float>;
template class EpochCopies<double>;
template void gather_rows<float>(const Array&, index_t, const SampleMajor<float>*, const index_t*,
                                 index_t, int, Tensor<float>&);
template void gather_rows<double>(const Array&, index_t, const SampleMajor<double>*,
                                  const index_t*, index_t, int, Tensor<double>&);
template double output_loss<float, float>(const OutputSpec&, std::size_t, const Tensor<float>&,
                                          const Tensor<float>&, bool, const float*,
                                          const float*, Tensor<float>*, int, Totals&,
                                          std::size_t&);
template class Trainer<float>;
template class Trainer<double>;

}  // namespace lcnn
