// Trainer: gathering a batch of samples out of R's column-major data or a
// sample-major copy of it;
// optimizer steps that layers apply in backward().
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "activation_layer.hpp"
#include "check.hpp"
#include "dense.hpp"
#include "flatten.hpp"
#include "locally_connected.hpp"
#include "trainer.hpp"

using namespace lcnn;

namespace {

// Sample i of feature f of the data below, exact in float.
double value_of(index_t i, index_t f) { return 100.0 * static_cast<double>(f) + i + 0.25; }

}  // namespace

// Consecutive rows take a run copy (converted eight values at a time, then
// one by one), any other order a copy through each row index or one from
// the data's sample-major copy; all must give sample-major batches, in
// float and in double, whatever the rows are; so must the sample-major
// copy itself. 3,003 features make more than one parallel block of a
// batch (16,384 values each) and leave three features after the copy's
// passes of eight; 1,100 samples a second, shorter block of the copy
// (1,024 samples each); 70 shuffled rows two whole groups of a gather
// from the copy (32 samples each) and part of a third.
TEST(trainer_gather_rows_runs_indices_and_copies) {
  const index_t n = 1100, features = 3003;
  std::vector<double> data(static_cast<std::size_t>(n * features));
  for (index_t f = 0; f < features; ++f) {
    for (index_t i = 0; i < n; ++i) data[f * n + i] = value_of(i, f);
  }
  const Array from{data.data(), n * features};
  const SampleMajor<float> copy = sample_major<float>(from, n, 2);
  const SampleMajor<double> copy_double = sample_major<double>(from, n, 1);
  CHECK_EQ(copy.features, features);
  CHECK_EQ(copy_double.features, features);
  index_t wrong_in_copy = 0;
  for (index_t i = 0; i < n; ++i) {
    for (index_t f = 0; f < features; ++f) {
      wrong_in_copy += copy.values[i * features + f] != static_cast<float>(value_of(i, f));
      wrong_in_copy += copy_double.values[i * features + f] != value_of(i, f);
    }
  }
  CHECK_EQ(wrong_in_copy, 0);
  std::vector<index_t> strided(70);
  for (index_t i = 0; i < 70; ++i) strided[i] = (i * 13) % n;
  const std::vector<std::vector<index_t>> batches = {
      {0, 1, 2, 3}, {4, 5, 6}, {1097, 1098, 1099}, {7}, {1099}, {1020, 1021, 1022, 1023, 1024, 1025},
      {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {3, 4, 6}, {1099, 8, 1030, 70}, {2, 2, 3}, {1024, 0},
      strided};
  for (const std::vector<index_t>& rows : batches) {
    const index_t count = static_cast<index_t>(rows.size());
    for (int threads : {1, 2}) {
      for (bool from_copy : {false, true}) {
        Tensor<float> to;
        to.resize(Shape{{count, 3, 1001}});
        gather_rows(from, n, from_copy ? &copy : nullptr, rows.data(), count, threads, to);
        Tensor<double> to_double;
        to_double.resize(Shape{{count, 3003}});
        gather_rows(from, n, from_copy ? &copy_double : nullptr, rows.data(), count, threads,
                    to_double);
        index_t wrong = 0;
        for (index_t f = 0; f < features; ++f) {
          for (index_t i = 0; i < count; ++i) {
            wrong += to.data[f * count + i] != static_cast<float>(value_of(rows[i], f));
            wrong += to_double.data[f * count + i] != value_of(rows[i], f);
          }
        }
        CHECK_EQ(wrong, 0);
      }
    }
  }
  Tensor<double> too_small;
  too_small.resize(Shape{{2, 5}});
  const std::vector<index_t> rows = {0, 1};
  CHECK_THROWS(gather_rows(from, n, &copy_double, rows.data(), 2, 1, too_small),
               std::invalid_argument);
}

// An epoch copies the data sample-major only when some batch is not a run
// of consecutive samples and there is more than one batch.
TEST(trainer_epoch_copies_only_for_shuffled_batches) {
  const index_t n = 6;
  std::vector<double> x(static_cast<std::size_t>(n * 3)), y(static_cast<std::size_t>(n));
  const DataSet data{{{x.data(), n * 3}}, {{y.data(), n}}, nullptr, n};
  const std::vector<index_t> in_order = {0, 1, 2, 3, 4, 5}, runs = {3, 4, 5, 0, 1, 2},
                             shuffled = {1, 0, 2, 3, 4, 5};
  EpochCopies<float> copies;
  CHECK(copies.for_epoch(data, in_order, 2, 1).empty());
  CHECK(copies.for_epoch(data, runs, 3, 1).empty());
  CHECK(copies.for_epoch(data, shuffled, 6, 1).empty());
  const std::vector<SampleMajor<float>>& made = copies.for_epoch(data, shuffled, 4, 1);
  CHECK_EQ(made.size(), std::size_t(2));
  if (made.size() == 2) {
    CHECK_EQ(made[0].features, 3);
    CHECK_EQ(made[1].features, 1);
  }
  CHECK_EQ(copies.for_epoch(data, {4, 5, 0, 1, 2, 3}, 2, 1).size(), std::size_t(0));
  CHECK_EQ(copies.for_epoch(data, runs, 2, 1).size(), std::size_t(2));
  CHECK_EQ(copies.for_epoch(data, runs, 4, 1).size(), std::size_t(2));
}

namespace {

// The first value of the first copy an epoch gathers from (-1 if none).
float first_copied(EpochCopies<float>& copies, const DataSet& data) {
  const std::vector<SampleMajor<float>>& made = copies.for_epoch(data, {1, 0, 2, 3}, 2, 1);
  return made.empty() ? -1.0f : made[0].values[0];
}

}  // namespace

// Kept copies serve the next epochs over the same arrays, and only them:
// the data changed under kept copies shows through only once the copies
// are made again (other arrays, keep(false)); copies not kept are made at
// every epoch.
TEST(trainer_epoch_copies_kept_between_epochs_of_the_same_data) {
  const index_t n = 4;
  std::vector<double> x = {1, 2, 3, 4}, y = {0, 0, 0, 0}, other_x = {7, 8, 9, 10};
  const DataSet data{{{x.data(), n}}, {{y.data(), n}}, nullptr, n};
  const DataSet other{{{other_x.data(), n}}, {{y.data(), n}}, nullptr, n};
  EpochCopies<float> copies;

  CHECK_EQ(first_copied(copies, data), 1.0f);
  copies.end_epoch();
  x[0] = 5;
  CHECK_EQ(first_copied(copies, data), 5.0f);
  copies.end_epoch();

  copies.keep(true);
  CHECK_EQ(first_copied(copies, data), 5.0f);
  copies.end_epoch();
  x[0] = 6;
  CHECK_EQ(first_copied(copies, data), 5.0f);
  copies.end_epoch();
  CHECK_EQ(first_copied(copies, other), 7.0f);
  CHECK_EQ(first_copied(copies, data), 6.0f);
  x[0] = 11;
  copies.keep(false);
  copies.keep(true);
  CHECK_EQ(first_copied(copies, data), 11.0f);

  // An array of another size at the same address is other data.
  const DataSet shorter{{{x.data(), n - 1}}, {{y.data(), n - 1}}, nullptr, n - 1};
  x[0] = 12;
  const std::vector<SampleMajor<float>>& made = copies.for_epoch(shorter, {1, 0, 2}, 2, 1);
  CHECK(!made.empty() && made[0].values[0] == 12.0f);
}

// Copies made by prepare() serve the epochs of the EpochCopies that takes
// them: the data changed in between shows through only where they are
// made again. prepare() tells which arrays, inputs then outputs, hold a
// value that is not finite in the copies' type (NaN, R's NA, infinite, or
// beyond float's range), and then frees the copies.
TEST(trainer_epoch_copies_prepared_then_taken) {
  const index_t n = 4;
  std::vector<double> x = {1, 2, 3, 4}, x2 = {5, 6, 7, 8}, y = {0, 0, 0, 0};
  const DataSet data{{{x.data(), n}, {x2.data(), n}}, {{y.data(), n}}, nullptr, n};
  EpochCopies<float> prepared, taker;
  CHECK(prepared.prepare(data, 2) == std::vector<bool>({false, false, false}));
  x[0] = 9;
  taker.take(prepared);
  CHECK_EQ(first_copied(taker, data), 1.0f);
  CHECK_EQ(first_copied(prepared, data), 9.0f);

  y[2] = std::nan("");
  EpochCopies<float> missing;
  CHECK(missing.prepare(data, 1) == std::vector<bool>({false, false, true}));
  x[0] = 10;
  taker.take(missing);
  CHECK_EQ(first_copied(taker, data), 10.0f);
  y[2] = 0;
  const std::uint64_t r_na_bits = 0x7FF00000000007A2ULL;  // R's NA_real_
  std::memcpy(&x2[3], &r_na_bits, sizeof r_na_bits);
  CHECK(missing.prepare(data, 1) == std::vector<bool>({false, true, false}));
  x[0] = 11;
  taker.take(missing);
  CHECK_EQ(first_copied(taker, data), 11.0f);
  x2[3] = 0;
  x[1] = -std::numeric_limits<double>::infinity();
  CHECK(missing.prepare(data, 1) == std::vector<bool>({true, false, false}));
  x[1] = 1e39;  // beyond float: infinite once copied
  CHECK(missing.prepare(data, 1) == std::vector<bool>({true, false, false}));
  EpochCopies<double> wide;
  CHECK(wide.prepare(data, 1) == std::vector<bool>({false, false, false}));
}

namespace {

// A locally connected layer on the GEMM kernels (the ones that apply the
// update in backward()), square kernel, stride 1, channels last.
template <typename T = double>
std::unique_ptr<LocallyConnected<T>> local_layer(std::mt19937_64& rng, index_t rows, index_t cols,
                                                 index_t kernel, Padding padding,
                                                 index_t channels, index_t filters,
                                                 Activation activation) {
  LocalGeometry g;
  g.rows = AxisWindow::make(rows, kernel, 1, padding);
  g.cols = AxisWindow::make(cols, kernel, 1, padding);
  g.channels = channels;
  g.filters = filters;
  std::uniform_real_distribution<double> value(-0.5, 0.5);
  std::vector<T> w(static_cast<std::size_t>(g.kernel_size()));
  std::vector<T> b(static_cast<std::size_t>(g.bias_size()));
  for (T& v : w) v = static_cast<T>(value(rng));
  for (T& v : b) v = static_cast<T>(value(rng));
  return std::make_unique<LocallyConnected<T>>(g, activation, w, b, LocalKernels::gemm);
}

// 6x5x2 -> LC 3x3 valid, relu -> 4x3x3 -> LC 2x2 same, tanh -> 4x3x3, and
// with `shared` that second layer once more: the second layer computes an
// input gradient from its weights, which an update made too early would
// change.
// With `dense`, a flatten and a dense layer of 36 units follow (layers 2
// and 3, blocks 4 and 5).
template <typename T = double>
std::unique_ptr<Network<T>> update_test_network(bool shared, bool dense = false) {
  std::mt19937_64 rng(7);
  std::vector<std::unique_ptr<Layer<T>>> layers;
  layers.push_back(local_layer<T>(rng, 6, 5, 3, Padding::valid, 2, 3, Activation::relu));
  layers.push_back(local_layer<T>(rng, 4, 3, 2, Padding::same, 3, 3, Activation::tanh));
  Graph graph;
  graph.inputs = {layers.front()->input_shape()};
  graph.nodes = {{0, {0}}, {1, {1}}};
  if (shared) {
    std::mt19937_64 same_rng(7);
    local_layer<T>(same_rng, 6, 5, 3, Padding::valid, 2, 3, Activation::relu);
    layers.push_back(local_layer<T>(same_rng, 4, 3, 2, Padding::same, 3, 3, Activation::tanh));
    graph.nodes.push_back({1, {2}});
  }
  if (dense) {
    const Shape last = layers.back()->output_shape();
    std::uniform_real_distribution<double> value(-0.3, 0.3);
    std::vector<T> kernel(static_cast<std::size_t>(last.size() * 36)), bias(36);
    for (T& w : kernel) w = T(value(rng));
    for (T& b : bias) b = T(value(rng));
    layers.push_back(std::make_unique<Flatten<T>>(last, false));
    layers.push_back(std::make_unique<Dense<T>>(Shape{{last.size()}}, 36, Activation::tanh,
                                                kernel, bias));
    graph.nodes.push_back({2, {graph.nodes.size()}});
    graph.nodes.push_back({3, {graph.nodes.size()}});
  }
  graph.outputs = {graph.nodes.size()};
  return std::make_unique<Network<T>>(std::move(graph), std::move(layers));
}

// update_test_network(false) with `last` as its output layer's activation,
// or that layer linear and followed by an activation layer of `last`.
template <typename T>
std::unique_ptr<Network<T>> output_test_network(Activation last, bool activation_layer) {
  std::mt19937_64 rng(7);
  std::vector<std::unique_ptr<Layer<T>>> layers;
  layers.push_back(local_layer<T>(rng, 6, 5, 3, Padding::valid, 2, 3, Activation::relu));
  layers.push_back(local_layer<T>(rng, 4, 3, 2, Padding::same, 3, 3,
                                  activation_layer ? Activation::linear : last));
  Graph graph;
  graph.inputs = {layers.front()->input_shape()};
  graph.nodes = {{0, {0}}, {1, {1}}};
  if (activation_layer) {
    layers.push_back(std::make_unique<ActivationLayer<T>>(layers.back()->output_shape(), last));
    graph.nodes.push_back({2, {2}});
  }
  graph.outputs = {graph.nodes.size()};
  return std::make_unique<Network<T>>(std::move(graph), std::move(layers));
}

// Training update_test_network() by mean squared error with SGD, all its
// blocks (four, or six with the dense layer) trained, no penalty or
// constraint.
TrainingSpec update_test_spec(std::size_t blocks = 4) {
  TrainingSpec spec;
  spec.outputs.resize(1);
  spec.outputs[0].loss = parse_loss("mse", false, 1);
  spec.trainable.assign(blocks, true);
  spec.penalties.assign(blocks, Penalty{});
  spec.constraints.assign(blocks, ConstraintSpec{});
  return spec;
}

// Inputs (6x5x2 values) and targets (36) of n samples for
// update_test_network(), column-major, drawn from [-1, 1) by `rng`: the
// inputs first.
struct UpdateTestData {
  std::vector<double> x, y;
};
UpdateTestData update_test_data(index_t n, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> value(-1, 1);
  UpdateTestData data{std::vector<double>(static_cast<std::size_t>(n * 6 * 5 * 2)),
                      std::vector<double>(static_cast<std::size_t>(n * 36))};
  for (double& v : data.x) v = value(rng);
  for (double& v : data.y) v = value(rng);
  return data;
}

// update_test_data() of n samples drawn from seed `seed`, as a data set
// (which points into x and y), and a shuffled epoch's order of them:
// sample (step * i + start) % n i-th.
struct ShuffledTestData {
  ShuffledTestData(index_t n, unsigned seed, index_t step, index_t start) : order(n) {
    std::mt19937_64 rng(seed);
    UpdateTestData drawn = update_test_data(n, rng);
    x = std::move(drawn.x);
    y = std::move(drawn.y);
    data = DataSet{{{x.data(), index_t(x.size())}}, {{y.data(), index_t(y.size())}}, nullptr, n};
    for (index_t i = 0; i < n; ++i) order[i] = (step * i + start) % n;
  }
  ShuffledTestData(const ShuffledTestData&) = delete;
  ShuffledTestData& operator=(const ShuffledTestData&) = delete;
  std::vector<double> x, y;
  DataSet data;
  std::vector<index_t> order;
};

// Samples [first, first + count) of column-major data with n samples.
std::vector<double> rows_of(const std::vector<double>& data, index_t n, index_t first,
                            index_t count) {
  const index_t features = static_cast<index_t>(data.size()) / n;
  std::vector<double> out;
  for (index_t f = 0; f < features; ++f) {
    out.insert(out.end(), data.begin() + f * n + first, data.begin() + f * n + first + count);
  }
  return out;
}

}  // namespace

// Two epochs of 24 samples in batches of 8 with fit_epoch(), whose layers
// apply the optimizer's step in backward() from the second batch on,
// against the same steps taken apart: the batch's loss (with its weight
// penalty) by evaluate(), its gradients by gradients(), then a separate
// optimizer over whole blocks. Every optimizer; weight penalties on every
// layer; a frozen first layer; a shared second layer (which must wait for
// its summed gradients); without and with a flatten and a dense layer at
// the end (which reads through the flatten and takes its step after
// backward()).
TEST(trainer_updates_in_backward_match_separate_steps) {
  std::vector<OptimizerSpec> optimizers(5);
  optimizers[0].learning_rate = 0.1;
  optimizers[1].momentum = 0.9;
  optimizers[1].nesterov = true;
  optimizers[2].kind = OptimizerKind::adam;
  optimizers[2].amsgrad = true;
  optimizers[3].kind = OptimizerKind::rmsprop;
  optimizers[3].centered = true;
  optimizers[3].momentum = 0.5;
  optimizers[4].kind = OptimizerKind::adagrad;
  const index_t n = 24, batch = 8;
  std::mt19937_64 rng(8);
  auto [x, y] = update_test_data(n, rng);
  std::vector<index_t> order(n);
  for (index_t i = 0; i < n; ++i) order[i] = i;
  Context ctx;
  ctx.threads = 2;
  for (std::size_t o = 0; o < optimizers.size() * 2; ++o) {
    const bool dense = o >= optimizers.size();
    for (const std::string variant : {"penalties", "frozen", "shared"}) {
      const std::string what = "optimizer " + std::to_string(o % optimizers.size() + 1) + ", " +
                               variant + (dense ? ", dense" : "");
      TrainingSpec spec = update_test_spec(dense ? 6 : 4);
      spec.optimizer = optimizers[o % optimizers.size()];
      if (variant == "penalties") {
        spec.penalties = {{0.01, 0.02}, {0, 0.05}, {0.03, 0}, {0, 0}};
        if (dense) spec.penalties.insert(spec.penalties.end(), {{0.02, 0.01}, {0, 0.03}});
      }
      if (variant == "frozen") spec.trainable[0] = spec.trainable[1] = false;
      const bool shared = variant == "shared";
      auto fused_network = update_test_network(shared, dense);
      Layer<double>& first_layer = fused_network->layer(0);
      Layer<double>& second_layer = fused_network->layer(1);
      Trainer<double> fused(std::move(fused_network), spec);
      Trainer<double> reference(update_test_network(shared, dense), spec);
      Optimizer<double> optimizer(spec.optimizer);
      const DataSet all{{{x.data(), static_cast<index_t>(x.size())}},
                        {{y.data(), static_cast<index_t>(y.size())}}, nullptr, n};
      bool completed = false;
      for (int epoch = 0; epoch < 2; ++epoch) {
        const Scores scores = fused.fit_epoch(
            all, order, batch, 1, ctx, [](index_t, const Scores&) { return true; }, completed);
        double loss = 0;
        for (index_t first = 0; first < n; first += batch) {
          const std::vector<double> bx = rows_of(x, n, first, batch), by = rows_of(y, n, first, batch);
          const DataSet part{{{bx.data(), static_cast<index_t>(bx.size())}},
                             {{by.data(), static_cast<index_t>(by.size())}}, nullptr, batch};
          loss += reference.evaluate(part, batch, ctx).loss * batch / n;
          const std::vector<std::vector<double>> gradients = reference.gradients(part, 1, ctx);
          std::vector<std::vector<double>> values = reference.parameters();
          std::vector<ParameterBlock<double>> blocks;
          for (std::size_t b = 0; b < values.size(); ++b) {
            if (spec.trainable[b]) blocks.push_back({"", values[b], gradients[b]});
          }
          std::vector<ParameterBlock<double>*> trained;
          for (ParameterBlock<double>& block : blocks) trained.push_back(&block);
          optimizer.step(trained, 1);
          for (std::size_t b = 0, t = 0; b < values.size(); ++b) {
            if (spec.trainable[b]) values[b] = blocks[t++].values;
          }
          reference.set_parameters(values);
        }
        CHECK_NEAR(scores.loss, loss, 1e-12);
      }
      // The layers that took the updates left their gradients empty.
      CHECK_EQ(first_layer.parameters()[0].gradient.empty(), variant != "frozen");
      CHECK_EQ(second_layer.parameters()[0].gradient.empty(), !shared);
      const auto got = fused.parameters(), expected = reference.parameters();
      double worst = 0;
      for (std::size_t b = 0; b < got.size(); ++b) {
        for (std::size_t i = 0; i < got[b].size(); ++i) {
          worst = std::max(worst, std::abs(got[b][i] - expected[b][i]));
        }
      }
      CHECK_MSG(worst < 1e-12, what << ": largest difference " << worst);
      CHECK_EQ(fused.iterations(), optimizer.iterations());
      const auto got_slots = fused.optimizer_slots();
      CHECK_EQ(got_slots.size(), optimizer.slots().size());
      for (std::size_t b = 0; b < got_slots.size() && b < optimizer.slots().size(); ++b) {
        CHECK_MSG(got_slots[b] == optimizer.slots()[b], what << ": slots of block " << b + 1);
      }
    }
  }
}

// Sparse targets hold one class index a sample: a trainer refuses metrics
// that would read one target per class of them (past their end), and takes
// sparse_categorical_accuracy, those metrics with a dense loss, and any
// metric for an output of one class (whose targets are one value a row).
TEST(trainer_refuses_metrics_of_one_target_per_class_with_a_sparse_loss) {
  const LossSpec sparse = parse_loss("sparse_categorical_crossentropy", false, 1);
  auto trainer_with = [](const LossSpec& loss, MetricKind metric) {
    TrainingSpec spec = update_test_spec();
    spec.outputs[0].loss = loss;
    spec.outputs[0].metrics = {MetricKind::sparse_categorical_accuracy, metric};
    // Outputs of 3 classes (filters).
    return Trainer<double>(update_test_network<double>(false), spec);
  };
  for (MetricKind metric : {MetricKind::binary_accuracy, MetricKind::categorical_accuracy,
                            MetricKind::mae, MetricKind::mse}) {
    CHECK_THROWS(trainer_with(sparse, metric), std::invalid_argument);
    CHECK_THROWS(check_metric_targets(metric, sparse, 3), std::invalid_argument);
    (void)trainer_with(parse_loss("categorical_crossentropy", false, 1), metric);
    check_metric_targets(metric, sparse, 1);
  }
  (void)trainer_with(sparse, MetricKind::sparse_categorical_accuracy);
}

// The layers apply the update only after a step at least as large on as
// many threads (the buffers of backward() exist then): a layer that took
// it leaves its kernel gradient empty, one that did not has it written.
TEST(trainer_updates_in_backward_only_after_a_step_as_large) {
  const index_t n = 16;
  std::mt19937_64 rng(9);
  const auto [x, y] = update_test_data(n, rng);
  const DataSet data{{{x.data(), static_cast<index_t>(x.size())}},
                     {{y.data(), static_cast<index_t>(y.size())}}, nullptr, n};
  TrainingSpec spec = update_test_spec();
  auto network = update_test_network(false);
  const std::vector<double>& kernel_gradient = network->layer(1).parameters()[0].gradient;
  Trainer<double> trainer(std::move(network), spec);
  const auto keep_going = [](index_t, const Scores&) { return true; };
  bool completed = false;
  // One step of `batch` samples (the first ones) on `threads` threads.
  auto step = [&](index_t batch, int threads) {
    std::vector<index_t> order(static_cast<std::size_t>(batch));
    for (index_t i = 0; i < batch; ++i) order[i] = i;
    Context ctx;
    ctx.threads = threads;
    trainer.fit_epoch(data, order, batch, 1, ctx, keep_going, completed);
    return kernel_gradient.empty();
  };
  CHECK(!step(8, 1));  // the first step
  CHECK(step(8, 1));
  CHECK(step(4, 1));   // smaller
  CHECK(!step(16, 1)); // larger than any before
  CHECK(step(16, 1));
  CHECK(!step(16, 2)); // more threads than any before
  CHECK(step(16, 2));
  CHECK(step(8, 1));
}

// The trainer keeps its batch between fit_epoch() and evaluate() calls:
// nothing of an earlier call (sample weights, targets read in place, a
// larger batch) may reach a later one. A trainer that evaluated weighted
// data in batches of 5 first must then train and evaluate bit for bit as
// one that did not, through a whole-data epoch (targets in place), an
// evaluation in batches of 7 and a shuffled epoch in batches of 8.
TEST(trainer_kept_batch_carries_nothing_between_calls) {
  const index_t n = 24, x_features = 6 * 5 * 2, y_features = 36;
  std::mt19937_64 rng(11);
  auto [x, y] = update_test_data(n, rng);
  std::uniform_real_distribution<double> value(-1, 1);
  std::vector<double> weights(static_cast<std::size_t>(n));
  for (double& w : weights) w = 0.5 + value(rng) * value(rng);
  std::vector<index_t> runs(n), shuffled(n);
  for (index_t i = 0; i < n; ++i) {
    runs[i] = i;
    shuffled[i] = (5 * i + 2) % n;
  }
  const DataSet data{{{x.data(), n * x_features}}, {{y.data(), n * y_features}}, nullptr, n};
  DataSet weighted = data;
  weighted.weights = weights.data();
  TrainingSpec spec = update_test_spec();
  spec.outputs[0].metrics = {MetricKind::mae};
  Trainer<float> kept(update_test_network<float>(false), spec);
  // A trainer that has run nothing yet, with kept's parameters (plain SGD
  // keeps no other state).
  auto fresh = [&] {
    auto trainer = std::make_unique<Trainer<float>>(update_test_network<float>(false), spec);
    trainer->set_parameters(kept.parameters());
    return trainer;
  };
  Context ctx;
  ctx.threads = 2;
  const auto keep_going = [](index_t, const Scores&) { return true; };
  bool completed = false;
  kept.evaluate(weighted, 5, ctx);
  auto reference = fresh();
  Scores got = kept.fit_epoch(data, runs, n, 1, ctx, keep_going, completed);
  Scores want = reference->fit_epoch(data, runs, n, 1, ctx, keep_going, completed);
  CHECK(got.loss == want.loss && got.metrics == want.metrics);
  CHECK(kept.parameters() == reference->parameters());
  got = kept.evaluate(data, 7, ctx);
  want = fresh()->evaluate(data, 7, ctx);
  CHECK(got.loss == want.loss && got.metrics == want.metrics);
  reference = fresh();
  got = kept.fit_epoch(data, shuffled, 8, 2, ctx, keep_going, completed);
  want = reference->fit_epoch(data, shuffled, 8, 2, ctx, keep_going, completed);
  CHECK(got.loss == want.loss && got.metrics == want.metrics);
  CHECK(kept.parameters() == reference->parameters());
}

// The optimizer's state as the glue saves it (its slots' bytes, copied
// where the caller says) and restores it: a trainer given another's
// parameters and state trains on bit for bit as that one does, in either
// precision; a slot of a size that is not whole values is refused.
template <typename T>
void check_optimizer_state_round_trip() {
  const ShuffledTestData drawn(24, 13, 5, 1);
  const DataSet& data = drawn.data;
  const std::vector<index_t>& shuffled = drawn.order;
  TrainingSpec spec = update_test_spec();
  spec.optimizer.kind = OptimizerKind::adam;
  spec.optimizer.learning_rate = 0.01;
  Trainer<T> trained(update_test_network<T>(false), spec);
  Context ctx;
  ctx.threads = 2;
  const auto keep_going = [](index_t, const Scores&) { return true; };
  bool completed = false;
  trained.fit_epoch(data, shuffled, 8, 1, ctx, keep_going, completed);
  CHECK_EQ(trained.value_bytes(), sizeof(T));
  const std::vector<index_t> sizes = trained.optimizer_slot_sizes();
  CHECK_EQ(sizes.size(), std::size_t(4));
  std::vector<std::vector<T>> saved;
  std::vector<void*> to;
  for (index_t size : sizes) saved.emplace_back(static_cast<std::size_t>(size), T(-7));
  for (auto& slot : saved) to.push_back(slot.data());
  trained.copy_optimizer_slots(to.data());
  const std::vector<std::vector<double>> as_doubles = trained.optimizer_slots();
  CHECK_EQ(as_doubles.size(), sizes.size());
  for (std::size_t k = 0; k < saved.size() && k < as_doubles.size(); ++k) {
    CHECK(std::vector<double>(saved[k].begin(), saved[k].end()) == as_doubles[k]);
  }
  std::vector<ValueBytes> bytes;
  for (const auto& slot : saved) bytes.push_back({slot.data(), slot.size() * sizeof(T)});
  Trainer<T> restored(update_test_network<T>(false), spec);
  restored.set_parameters(trained.parameters());
  restored.restore_optimizer(trained.iterations(), bytes);
  CHECK_EQ(restored.iterations(), trained.iterations());
  CHECK(restored.optimizer_slots() == as_doubles);
  const Scores a = trained.fit_epoch(data, shuffled, 8, 2, ctx, keep_going, completed);
  const Scores b = restored.fit_epoch(data, shuffled, 8, 2, ctx, keep_going, completed);
  CHECK(a.loss == b.loss);
  CHECK(trained.parameters() == restored.parameters());
  CHECK(trained.optimizer_slots() == restored.optimizer_slots());
  bytes[1].size -= 1;
  CHECK_THROWS(restored.restore_optimizer(3, bytes), std::invalid_argument);
}

TEST(trainer_optimizer_state_round_trip) {
  check_optimizer_state_round_trip<float>();
  check_optimizer_state_round_trip<double>();
}

// Shuffled epochs gather from sample-major copies of the data. A trainer
// that keeps them between epochs trains bit for bit as one that makes them
// at every epoch; once it lets them go, both see data changed since.
TEST(trainer_kept_epoch_copies_train_as_copies_made_each_epoch) {
  ShuffledTestData drawn(24, 12, 7, 3);
  std::vector<double>& x = drawn.x;
  const DataSet& data = drawn.data;
  const std::vector<index_t>& shuffled = drawn.order;
  const TrainingSpec spec = update_test_spec();
  Trainer<float> kept(update_test_network<float>(false), spec);
  Trainer<float> made_each_epoch(update_test_network<float>(false), spec);
  made_each_epoch.set_parameters(kept.parameters());
  Context ctx;
  ctx.threads = 2;
  const auto keep_going = [](index_t, const Scores&) { return true; };
  bool completed = false;
  auto same_epoch = [&](std::uint64_t seed) {
    const Scores a = kept.fit_epoch(data, shuffled, 8, seed, ctx, keep_going, completed);
    const Scores b = made_each_epoch.fit_epoch(data, shuffled, 8, seed, ctx, keep_going, completed);
    return a.loss == b.loss && kept.parameters() == made_each_epoch.parameters();
  };
  kept.keep_epoch_copies(true);
  CHECK(same_epoch(1));
  CHECK(same_epoch(2));
  kept.keep_epoch_copies(false);
  for (double& v : x) v = -v;
  CHECK(same_epoch(3));
}

// A batch of the whole data, in order, reads its targets in place from the
// data; any other batch gathers them. The data permuted, and taken in an
// order that undoes the permutation: in float, with targets that float
// cannot hold, two epochs give the same scores (the loss and an mae metric)
// and the same weights bit for bit; evaluate() the same loss.
TEST(trainer_targets_read_in_place_match_gathered_targets) {
  const index_t n = 24, batch = n, x_features = 6 * 5 * 2, y_features = 36;
  std::mt19937_64 rng(10);
  auto [x, y] = update_test_data(n, rng);
  // Sample i of the data is sample moved(i) of the permuted data.
  auto moved = [&](index_t i) { return (7 * i + 3) % n; };
  auto permute = [&](const std::vector<double>& data, index_t features) {
    std::vector<double> out(data.size());
    for (index_t f = 0; f < features; ++f) {
      for (index_t i = 0; i < n; ++i) out[f * n + moved(i)] = data[f * n + i];
    }
    return out;
  };
  const std::vector<double> px = permute(x, x_features), py = permute(y, y_features);
  std::vector<index_t> runs(n), shuffled(n);
  for (index_t i = 0; i < n; ++i) {
    runs[i] = i;
    shuffled[i] = moved(i);
  }
  const DataSet data{{{x.data(), n * x_features}}, {{y.data(), n * y_features}}, nullptr, n};
  const DataSet permuted{{{px.data(), n * x_features}}, {{py.data(), n * y_features}}, nullptr, n};
  TrainingSpec spec = update_test_spec();
  spec.outputs[0].metrics = {MetricKind::mae};
  Trainer<float> in_place(update_test_network<float>(false), spec);
  Trainer<float> gathered(update_test_network<float>(false), spec);
  Context ctx;
  ctx.threads = 2;
  const auto keep_going = [](index_t, const Scores&) { return true; };
  bool completed = false;
  for (int epoch = 0; epoch < 2; ++epoch) {
    const Scores a = in_place.fit_epoch(data, runs, batch, 1, ctx, keep_going, completed);
    const Scores b = gathered.fit_epoch(permuted, shuffled, batch, 1, ctx, keep_going, completed);
    CHECK_EQ(a.loss, b.loss);
    CHECK(a.metrics == b.metrics);
  }
  CHECK(in_place.parameters() == gathered.parameters());
  CHECK_EQ(in_place.evaluate(data, batch, ctx).loss, gathered.evaluate(data, batch, ctx).loss);
}

// An elementwise loss writes its gradient over the network's output where
// nothing reads the output after the loss: a linear output layer, or a
// sigmoid one whose binary crossentropy takes its logits. Training such a
// network must give what the same network does with its activation in an
// activation layer of its own (whose backward() reads its output, so that
// the gradient goes to a tensor of its own), bit for bit, for a batch of
// the whole data (targets read in place) and shuffled batches (targets
// copied); so must relu and a sigmoid under mse, whose layers read their
// output in backward().
TEST(trainer_loss_gradient_over_the_output_where_backward_does_not_read_it) {
  const index_t n = 24, x_features = 6 * 5 * 2, y_features = 36;
  std::mt19937_64 rng(12);
  std::uniform_real_distribution<double> unit(0, 1);
  std::vector<double> x(static_cast<std::size_t>(n * x_features)),
      y(static_cast<std::size_t>(n * y_features));
  for (double& v : x) v = 2 * unit(rng) - 1;
  for (double& v : y) v = unit(rng);
  std::vector<index_t> runs(n), shuffled(n);
  for (index_t i = 0; i < n; ++i) {
    runs[i] = i;
    shuffled[i] = (5 * i + 2) % n;
  }
  const DataSet data{{{x.data(), n * x_features}}, {{y.data(), n * y_features}}, nullptr, n};
  Context ctx;
  ctx.threads = 2;
  const auto keep_going = [](index_t, const Scores&) { return true; };
  bool completed = false;
  struct Case {
    Activation last;
    const char* loss;
    bool over_output;
  };
  const std::vector<Case> cases = {{Activation::linear, "mse", true},
                                   {Activation::sigmoid, "binary_crossentropy", true},
                                   {Activation::relu, "mse", false},
                                   {Activation::sigmoid, "mse", false}};
  for (const Case& c : cases) {
    TrainingSpec spec = update_test_spec();
    spec.outputs[0].loss = parse_loss(c.loss, false, 1);
    spec.outputs[0].metrics = {MetricKind::mae};
    const bool logits = std::string(c.loss) == "binary_crossentropy";
    auto network = output_test_network<float>(c.last, false);
    CHECK_EQ(network->output_for_gradient(0, logits, {}) != nullptr, c.over_output);
    CHECK(network->output_for_gradient(0, logits, {{}, {0, 0.1}}) == nullptr);
    CHECK(output_test_network<float>(c.last, true)->output_for_gradient(0, logits, {}) ==
          nullptr);
    Trainer<float> direct(std::move(network), spec);
    Trainer<float> through(output_test_network<float>(c.last, true), spec);
    for (int epoch = 0; epoch < 2; ++epoch) {
      const std::vector<index_t>& order = epoch == 0 ? runs : shuffled;
      const index_t batch = epoch == 0 ? n : 8;
      const Scores a = direct.fit_epoch(data, order, batch, 1, ctx, keep_going, completed);
      const Scores b = through.fit_epoch(data, order, batch, 1, ctx, keep_going, completed);
      CHECK_MSG(a.loss == b.loss && a.metrics == b.metrics, c.loss << " epoch " << epoch);
    }
    CHECK_MSG(direct.parameters() == through.parameters(), c.loss);
  }
}
