// Training on a CUDA device (float32): the network's parameters, gradients
// and optimizer state stay in device memory across batches and epochs;
// each mini-batch is gathered on the host, uploaded, and its forward,
// backward and update run on the device. The loss and metrics are computed
// on the host by the CPU engine's own functions (loss.hpp) from the
// downloaded outputs (B x outputs values per batch), which keeps one
// definition of every loss; their gradient goes back up.
//
// Supports what DeviceNetwork supports, with any loss, metric and optimizer
// of the engine, sample and class weights, weight and activity penalties
// and constraints.
#pragma once

#include <memory>
#include <vector>

#include "device_network.hpp"
#include "trainer.hpp"

namespace lcnn {

class DeviceTrainer : public TrainerBase {
 public:
  // Copies the network's parameters to the device; throws DeviceUnsupported.
  DeviceTrainer(std::unique_ptr<Network<float>> network, TrainingSpec spec);

  Scores fit_epoch(const DataSet& data, const std::vector<index_t>& order, index_t batch_size,
                   std::uint64_t seed, const Context& ctx, const Progress& progress,
                   bool& completed) override;
  Scores evaluate(const DataSet& data, index_t batch_size, const Context& ctx) override;
  void keep_epoch_copies(bool keep) override { epoch_copies_.keep(keep); }
  void take_epoch_copies(PreparedCopies& prepared) override {
    epoch_copies_.take(prepared.of<float>());
  }
  std::vector<index_t> parameter_sizes() const override;
  void copy_parameters(double* const* to) const override;
  void set_parameters(const std::vector<std::vector<double>>& values) override;
  std::vector<std::vector<double>> gradients(const DataSet& data, std::uint64_t seed,
                                             const Context& ctx) override;
  void set_learning_rate(double lr) override { spec_.optimizer.learning_rate = lr; }
  double learning_rate() const override { return spec_.optimizer.learning_rate; }
  double iterations() const override { return iterations_; }
  std::size_t value_bytes() const override { return sizeof(float); }
  std::vector<index_t> optimizer_slot_sizes() const override;
  void copy_optimizer_slots(void* const* to) const override;
  void restore_optimizer(double iterations, const std::vector<ValueBytes>& slots) override;
  NetworkBase& network() override { return device_; }

 private:
  // One batch on the host (targets, then their gradient) and on the device.
  struct Batch {
    Tensor<float> x, y, sparse_grad, prediction, logits;
    std::vector<float> weights;
    cuda::Buffer<float> device_x, device_grad;
  };
  void gather(const DataSet& data, const std::vector<SampleMajor<float>>& copies,
              const index_t* rows, index_t count, int threads);
  // Forward, loss and metrics; with ctx.training backward too.
  void forward_backward(const Context& ctx, Totals& totals);
  void step();
  // The weight penalties (l1 |w| + l2 w^2) and, with add_gradient, their
  // gradient added on the device.
  double penalty(bool add_gradient);
  // Applies the trained blocks' constraints, on the host: the CPU engine's
  // own code on a copy of the block (see apply_constraint()).
  void constrain();
  // Fresh slots unless restored ones fit the trained blocks.
  void ensure_slots();

  std::unique_ptr<Network<float>> host_;  // shapes, and the layers mirrored
  TrainingSpec spec_;
  DeviceNetwork device_;
  std::vector<cuda::Buffer<float>*> values_, gradients_;
  std::vector<cuda::Buffer<float>> slots_;  // per trained block
  double iterations_ = 0;
  Batch batch_;
  EpochCopies<float> epoch_copies_;
  cuda::Buffer<double> penalty_partials_;
};

}  // namespace lcnn
