// Training inside the engine: whole epochs of mini-batches (gather, forward,
// loss, backward, optimizer step) with the caller told of progress between
// batches only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <type_traits>
#include <vector>

#include "buffer.hpp"
#include "constraint.hpp"
#include "loss.hpp"
#include "network.hpp"
#include "optimizer.hpp"

namespace lcnn {

// What one output of the network is trained for: its loss, that loss's
// weight in the total (Keras's loss_weights) and its metrics.
struct OutputSpec {
  LossSpec loss;
  double weight = 1;
  std::vector<MetricKind> metrics;
};

struct TrainingSpec {
  std::vector<OutputSpec> outputs;  // one per network output
  OptimizerSpec optimizer;
  // Per parameter block of the network, in order: whether it trains, its
  // regularization penalty and its constraint.
  std::vector<bool> trainable;
  std::vector<Penalty> penalties;
  std::vector<ConstraintSpec> constraints;
  // Per layer: the penalty on its outputs (activity regularizer).
  std::vector<Penalty> activity;
};

// An array as R holds it: column-major with the n samples first.
struct Array {
  const double* data = nullptr;
  index_t size = 0;
};

// Values in the engine's own type (float or double), as bytes.
struct ValueBytes {
  const void* data = nullptr;
  std::size_t size = 0;
};

// A data set: one array per network input (xs) and output (ys). Sparse
// targets have one value per row of the prediction; weights one per sample
// or none.
struct DataSet {
  std::vector<Array> xs, ys;
  const double* weights = nullptr;
  index_t n = 0;
};

// Mean loss (with penalties and loss weights), each output's own loss, and
// the metric values (output by output) over the samples seen.
struct Scores {
  double loss = 0;
  std::vector<double> output_losses;
  std::vector<double> metrics;
};

// Running sums over an epoch's batches, and the scores they make.
struct Totals {
  double loss = 0;
  index_t seen = 0;
  std::vector<double> output_losses, metrics, counts;

  explicit Totals(const TrainingSpec& spec);
  Scores scores() const;
};

// An array of a data set copied, in T, with the samples outermost: row i
// holds the `features` values of sample i. R's arrays keep the samples
// innermost, so a batch of shuffled samples reads one cache line per value
// from them, and each sample's values in one run from this copy.
template <typename T>
struct SampleMajor {
  BlockArray<T> values;  // not zeroed first: every value is written
  index_t features = 0;
  bool not_finite = false;  // whether any value copied is not finite (sample_major_rows())
};

// `from`, which holds n samples, as a SampleMajor.
template <typename T>
SampleMajor<T> sample_major(const Array& from, index_t n, int threads);

// The sample-major copies of the data's arrays (inputs, then outputs) for a
// trainer's epochs, made at an epoch that needs them: one that takes the
// samples in an order where some batch is not a run of consecutive samples,
// and has more than one batch (with one, copying would cost what gathering
// does). Freed when the epoch ends, unless kept: then a later epoch over
// the same arrays (address and size) reuses them, which saved each epoch of
// the demo model 0.15-0.25 s on two cores (bench/NOTES.md). Kept copies do
// not follow changes to the arrays' values, so the caller keeps them only
// while the data cannot change: fit() for the epochs of one call. fit()
// also makes them before the trainer exists (prepare()), as it checks its
// data, and hands them over (take()).
template <typename T>
class EpochCopies {
 public:
  // The copies for an epoch over `data` in `order`, batch_size at a time;
  // empty when it needs none.
  const std::vector<SampleMajor<T>>& for_epoch(const DataSet& data,
                                               const std::vector<index_t>& order,
                                               index_t batch_size, int threads);
  // Makes the copies of `data` now, for epochs in any order, and returns
  // which of its arrays (inputs, then outputs) hold a value that is not
  // finite in T (sample_major_rows()), found as the copy reads each value:
  // a scan of their own before fit() builds the model took 14 ms of each
  // fit() call of the demo model (bench/NOTES.md).
  // With any, the copies are freed again.
  std::vector<bool> prepare(const DataSet& data, int threads);
  // Takes over `other`'s copies, freeing its own first.
  void take(EpochCopies& other);
  // Called when an epoch ends, however it ends: frees the copies unless kept.
  void end_epoch();
  // Whether copies outlive their epoch; false also frees them.
  void keep(bool on);

 private:
  // The arrays the copies were made from (inputs, then outputs).
  static std::vector<Array> arrays_of(const DataSet& data);
  // Makes the copies of `data` unless they are made from its arrays.
  void make(const DataSet& data, int threads);
  void release();

  bool keep_ = false;
  std::vector<Array> sources_;
  index_t samples_ = 0;
  std::vector<SampleMajor<T>> copies_;
  const std::vector<SampleMajor<T>> none_{};
};

// A copy of the samples `rows` (count of them) of `from`, which holds n
// samples, into `to` (already shaped for the batch), as T, in blocks of
// features of at most about `block_values` values that any thread may run:
// one run per feature when the rows are consecutive, else from `copy`
// (from's sample-major copy) when there is one, else through each row
// index. Throws std::invalid_argument when `from` does not hold n samples
// of to's features.
template <typename T>
class RowGather {
 public:
  RowGather(const Array& from, index_t n, const SampleMajor<T>* copy, const index_t* rows,
            index_t count, Tensor<T>& to, index_t block_values);
  index_t blocks() const { return blocks_; }
  void run(index_t block) const;

 private:
  const Array* from_;
  index_t n_;
  const SampleMajor<T>* copy_;
  const index_t* rows_;
  index_t count_;
  T* to_;
  index_t features_, block_, blocks_;
  bool runs_;
};

// All of a gather on `threads` threads.
template <typename T>
void gather_rows(const Array& from, index_t n, const SampleMajor<T>* copy, const index_t* rows,
                 index_t count, int threads, Tensor<T>& to);

// Throws std::invalid_argument unless `spec` fits a network of `blocks`
// parameter blocks, `layers` layers and outputs of `output_shapes`: one
// trainable flag, penalty and constraint a block, one activity penalty a
// layer (or none), one loss an output and metrics that read its targets
// (check_metric_targets()).
void check_training_spec(const TrainingSpec& spec, std::size_t blocks, std::size_t layers,
                         const std::vector<Shape>& output_shapes);

// Output o's loss on a batch, its gradient Keras-weighted by `out.weight`
// in *grad unless grad is null (dLoss/dLoss input, which may be the batch
// tensor of dense targets, see loss_and_gradient()); adds its metrics (of
// `prediction`, numbered from `metric`) and its loss to the totals and
// returns that loss unweighted.
template <typename T, typename X>
double output_loss(const OutputSpec& out, std::size_t o, const Tensor<T>& prediction,
                   const Tensor<T>& loss_input, bool logits, const X* target,
                   const T* weights, Tensor<T>* grad, int threads, Totals& totals,
                   std::size_t& metric);

// Sample-major copies made before the trainer that uses them, of either
// type: fit() makes them as it checks its data (EpochCopies::prepare()),
// then builds the trainer, which takes those of its own.
struct PreparedCopies {
  EpochCopies<float> single;
  EpochCopies<double> double_precision;

  template <typename T>
  EpochCopies<T>& of() {
    if constexpr (std::is_same_v<T, float>) {
      return single;
    } else {
      return double_precision;
    }
  }
};

// Slots given as bytes (TrainerBase::restore_optimizer()) as values of T;
// throws std::invalid_argument for a size that is not whole values.
template <typename T>
std::vector<std::vector<T>> slot_values(const std::vector<ValueBytes>& slots);

class TrainerBase {
 public:
  virtual ~TrainerBase() = default;
  // Called after each batch with its index and the running scores; returning
  // false stops the epoch there (the finished batches keep their updates).
  using Progress = std::function<bool(index_t batch, const Scores& running)>;
  // One epoch over the samples in `order`; batch b's randomness (dropout)
  // comes from seed + b. Returns the scores and sets `completed` to false if
  // progress() stopped it.
  virtual Scores fit_epoch(const DataSet& data, const std::vector<index_t>& order,
                           index_t batch_size, std::uint64_t seed, const Context& ctx,
                           const Progress& progress, bool& completed) = 0;
  virtual Scores evaluate(const DataSet& data, index_t batch_size, const Context& ctx) = 0;
  // Whether the data's sample-major copies outlive an epoch, for the next
  // epochs over the same arrays (EpochCopies); false also frees them.
  virtual void keep_epoch_copies(bool keep) = 0;
  // Takes over the prepared copies of this trainer's type.
  virtual void take_epoch_copies(PreparedCopies& prepared) = 0;
  // The network's parameters, block by block: each block's size, and its
  // values as doubles written to to[b], which has room for them (the glue
  // passes R's vectors: a fit() call's end then copies each value once,
  // where a vector of the engine's own in between doubled the copies and
  // the page faults; bench/NOTES.md). parameters() returns them as vectors.
  virtual std::vector<index_t> parameter_sizes() const = 0;
  virtual void copy_parameters(double* const* to) const = 0;
  std::vector<std::vector<double>> parameters() const;
  virtual void set_parameters(const std::vector<std::vector<double>>& values) = 0;
  // dLoss/dParameters on one batch (in training mode, without an update).
  virtual std::vector<std::vector<double>> gradients(const DataSet& data, std::uint64_t seed,
                                                     const Context& ctx) = 0;
  virtual void set_learning_rate(double lr) = 0;
  virtual double learning_rate() const = 0;
  virtual double iterations() const = 0;
  // The optimizer's slots in the engine's own type, value_bytes() a value:
  // each slot's size in values, and its bytes copied to to[k] (R's raw
  // vectors, from the glue: saved only for restore_optimizer(), they take
  // half the bytes of doubles, and no conversion either way;
  // bench/NOTES.md). optimizer_slots() returns them as doubles.
  virtual std::size_t value_bytes() const = 0;
  virtual std::vector<index_t> optimizer_slot_sizes() const = 0;
  virtual void copy_optimizer_slots(void* const* to) const = 0;
  std::vector<std::vector<double>> optimizer_slots() const;
  // Takes the step count and slots copied as above; throws
  // std::invalid_argument for a slot of a size that is not whole values.
  virtual void restore_optimizer(double iterations, const std::vector<ValueBytes>& slots) = 0;
  virtual NetworkBase& network() = 0;
};

template <typename T>
class Trainer : public TrainerBase {
 public:
  Trainer(std::unique_ptr<Network<T>> network, TrainingSpec spec);
  // Its layer updates refer to it: it stays where it was made.
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  Scores fit_epoch(const DataSet& data, const std::vector<index_t>& order, index_t batch_size,
                   std::uint64_t seed, const Context& ctx, const Progress& progress,
                   bool& completed) override;
  Scores evaluate(const DataSet& data, index_t batch_size, const Context& ctx) override;
  void keep_epoch_copies(bool keep) override { epoch_copies_.keep(keep); }
  void take_epoch_copies(PreparedCopies& prepared) override {
    epoch_copies_.take(prepared.of<T>());
  }
  std::vector<index_t> parameter_sizes() const override;
  void copy_parameters(double* const* to) const override;
  void set_parameters(const std::vector<std::vector<double>>& values) override;
  std::vector<std::vector<double>> gradients(const DataSet& data, std::uint64_t seed,
                                             const Context& ctx) override;
  void set_learning_rate(double lr) override { optimizer_.set_learning_rate(lr); }
  double learning_rate() const override { return optimizer_.spec().learning_rate; }
  double iterations() const override { return optimizer_.iterations(); }
  std::size_t value_bytes() const override { return sizeof(T); }
  std::vector<index_t> optimizer_slot_sizes() const override;
  void copy_optimizer_slots(void* const* to) const override;
  void restore_optimizer(double iterations, const std::vector<ValueBytes>& slots) override;
  NetworkBase& network() override { return *network_; }

 private:
  struct Batch {
    std::vector<Tensor<T>> xs, ys;
    // When the batch is the whole data, in order: each output's targets,
    // read in place from the data (ys then holds only the gradients of
    // dense outputs that do not take their gradient over themselves; see
    // forward_backward()).
    std::vector<const double*> ys_in_data;
    std::vector<T> weights;
  };
  // A batch's copies of the data (one per input, and per output whose
  // targets are copied), numbered block by block across them.
  struct BatchGather {
    std::vector<RowGather<T>> parts;
    index_t blocks() const;
    void run(index_t block) const;
  };
  // Shapes the batch's tensors for the samples `rows` of the data, sets its
  // weights and the targets a batch of the whole data reads in place, and
  // returns the copies that fill the rest: from the data's sample-major
  // copies when there are any (EpochCopies), in blocks of about
  // `block_values` values.
  BatchGather plan_gather(const DataSet& data, const std::vector<SampleMajor<T>>& copies,
                          const index_t* rows, index_t count, index_t block_values,
                          Batch& batch) const;
  // All of plan_gather() on `threads` threads.
  void gather(const DataSet& data, const std::vector<SampleMajor<T>>& copies,
              const index_t* rows, index_t count, int threads, Batch& batch) const;
  // Forward and loss on one batch, and with ctx.training backward; adds
  // the batch's losses and metrics to the running sums.
  void forward_backward(Batch& batch, const Context& ctx, Totals& totals);
  // The regularization penalty.
  double penalty() const;
  // Adds its gradient to the gradients of the blocks not updated in backward().
  void add_penalty_gradients();
  // The optimizer's step, after the penalty's gradient, on part of block b.
  void update_part(std::size_t b, index_t start, index_t count, T* gradient);
  // Asks the layers that may (may_update_in_backward_) to apply the
  // optimizer's step in backward() (see Layer::update_in_backward()), or
  // (`fuse` false) tells them all not to.
  void offer_updates(bool fuse);
  // Applies the constraints, then gives shared layers' nodes the new values.
  void after_update();

  // The optimizer's step on the blocks of layer l, for the layer to apply.
  class LayerUpdate : public ParameterUpdate<T> {
   public:
    LayerUpdate(Trainer& trainer, std::size_t first_block)
        : trainer_(trainer), first_block_(first_block) {}
    void apply(std::size_t block, index_t start, index_t count, T* gradient) override {
      trainer_.update_part(first_block_ + block, start, count, gradient);
    }

   private:
    Trainer& trainer_;
    std::size_t first_block_;
  };

  std::unique_ptr<Network<T>> network_;
  TrainingSpec spec_;
  Optimizer<T> optimizer_;
  std::vector<ParameterBlock<T>*> blocks_;
  // The blocks that train, and each block's place among them.
  std::vector<ParameterBlock<T>*> trained_;
  std::vector<std::size_t> trained_index_;
  std::vector<LayerUpdate> layer_updates_;  // one per layer
  // Per layer: whether it runs at one node and trains all its blocks, so
  // that it may apply the optimizer's step in backward().
  std::vector<bool> may_update_in_backward_;
  // Per block: whether its layer applies the optimizer's step in backward().
  std::vector<bool> updated_in_backward_;
  // The largest batch and thread count of the training steps so far: the
  // buffers backward() uses have been allocated for them.
  index_t largest_batch_ = 0;
  int most_threads_ = 0;
  EpochCopies<T> epoch_copies_;
  // The loss gradients of the outputs with sparse targets, kept between
  // batches so that their memory is not allocated (and its pages faulted
  // in) for every batch. Dense outputs' gradients go over the output itself
  // where nothing reads it after the loss (Network::output_for_gradient()),
  // else take their batch targets' place (Batch::ys).
  std::vector<Tensor<T>> output_grads_;
  // The batch of fit_epoch() and evaluate(), kept between epochs and calls
  // for the same reason: an epoch of one batch (all the data) would
  // otherwise allocate, zero and fault in its input and gradient every
  // step (W5: 25.6 MB a step; bench/NOTES.md). gradients() takes all the
  // data at once and keeps nothing.
  Batch batch_;
  // The next step's batch, gathered during the current one (fit_epoch()).
  Batch next_batch_;
};

}  // namespace lcnn
