// Training steps of the DESIGN.md workloads W1-W7 on the CUDA device, with
// the device's floor measured in the same run (cuBLAS SGEMM peak and
// device-to-device copy bandwidth): `make -C tests/cpp bench-cuda` on a GPU
// host. Prints a markdown table for bench/RESULTS.md.
//
// A step is what fit() does per batch of 64: gather the batch from double
// arrays on the host, upload it, forward, loss (mse, on the host), backward
// and an SGD update on the device, timed as the median over batches of an
// epoch after two warm-up batches.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cuda/device.hpp"
#include "dense.hpp"
#include "device_trainer.hpp"
#include "dropout.hpp"
#include "flatten.hpp"
#include "locally_connected.hpp"

using namespace lcnn;
using Clock = std::chrono::steady_clock;

namespace {

constexpr index_t kBatch = 64;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Best of several timed runs of `body`, in seconds, after one warm-up.
template <typename Body>
double best_time(int runs, Body body) {
  body();
  cuda::synchronize();
  double best = 1e30;
  for (int r = 0; r < runs; ++r) {
    const Clock::time_point start = Clock::now();
    body();
    cuda::synchronize();
    best = std::min(best, seconds_since(start));
  }
  return best;
}

struct Floor {
  double gemm_flops;  // per second
  double copy_bytes;  // read plus written, per second
};

Floor measure_floor() {
  const index_t n = 8192;
  cuda::Buffer<float> a(n * n), b(n * n), c(n * n);
  cuda::fill_zero(a.data(), n * n * sizeof(float));
  cuda::fill_zero(b.data(), n * n * sizeof(float));
  const double gemm = best_time(
      5, [&] { cuda::gemm(false, false, n, n, n, a.data(), n, b.data(), n, 0.0f, c.data(), n); });
  const std::size_t bytes = std::size_t(1) << 30;
  cuda::Buffer<char> from(bytes), to(bytes);
  const double copy = best_time(10, [&] { cuda::copy_on_device(to.data(), from.data(), bytes); });
  return {2.0 * n * n * n / gemm, 2.0 * bytes / copy};
}

struct Workload {
  std::string id, desc;
  bool one_d;
  index_t rows, cols, channels, filters, kernel_rows, kernel_cols;
  Padding padding;
};

LocalGeometry geometry_of(const Workload& w) {
  LocalGeometry g;
  g.rows = AxisWindow::make(w.rows, w.kernel_rows, 1, w.padding);
  g.cols = w.one_d ? AxisWindow::make(1, 1, 1, Padding::valid)
                   : AxisWindow::make(w.cols, w.kernel_cols, 1, w.padding);
  g.channels = w.channels;
  g.filters = w.filters;
  g.one_d = w.one_d;
  return g;
}

std::vector<float> random_floats(std::mt19937_64& rng, index_t n, float scale) {
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (float& x : v) x = u(rng);
  return v;
}

std::unique_ptr<Network<float>> chain(std::vector<std::unique_ptr<Layer<float>>> layers) {
  Graph graph;
  graph.inputs = {layers.front()->input_shape()};
  for (std::size_t i = 0; i < layers.size(); ++i) graph.nodes.push_back({i, {i}});
  graph.outputs = {layers.size()};
  return std::make_unique<Network<float>>(std::move(graph), std::move(layers));
}

TrainingSpec spec_for(const Network<float>& network, LossKind loss, OptimizerKind optimizer) {
  std::size_t blocks = 0;
  for (std::size_t l = 0; l < network.layer_count(); ++l) {
    blocks += const_cast<Network<float>&>(network).layer(l).parameters().size();
  }
  TrainingSpec spec;
  OutputSpec out;
  out.loss.kind = loss;
  spec.outputs = {out};
  spec.optimizer.kind = optimizer;
  spec.optimizer.learning_rate = 0.001;
  spec.trainable.assign(blocks, true);
  spec.penalties.assign(blocks, Penalty{});
  spec.constraints.assign(blocks, ConstraintSpec{});
  return spec;
}

// Median seconds per batch of `batches` (after two warm-up batches).
double time_steps(DeviceTrainer& trainer, const DataSet& data, index_t batches) {
  std::vector<index_t> order(static_cast<std::size_t>(data.n));
  for (index_t i = 0; i < data.n; ++i) order[i] = i;
  std::vector<double> times;
  Clock::time_point last = Clock::now();
  bool completed = false;
  trainer.fit_epoch(
      data, order, kBatch, 0, Context{},
      [&](index_t b, const Scores&) {
        cuda::synchronize();
        if (b >= 2) times.push_back(seconds_since(last));
        last = Clock::now();
        return b + 1 < batches + 2;
      },
      completed);
  return median(times);
}

struct Row {
  std::string id, desc, path;
  double step, floor;
};

Row run_workload(const Workload& w, const Floor& floor, std::mt19937_64& rng) {
  const LocalGeometry g = geometry_of(w);
  std::vector<float> kernel = random_floats(rng, g.kernel_size(), 0.05f);
  zero_unconnected(g, kernel.data());
  std::vector<std::unique_ptr<Layer<float>>> layers;
  layers.push_back(std::make_unique<LocallyConnected<float>>(
      g, Activation::linear, kernel, random_floats(rng, g.bias_size(), 0.1f)));
  auto network = chain(std::move(layers));
  const TrainingSpec spec = spec_for(*network, LossKind::mse, OptimizerKind::sgd);
  DeviceTrainer trainer(std::move(network), spec);
  const index_t batches = 10, n = kBatch * (batches + 2);
  std::vector<double> x(static_cast<std::size_t>(n * g.input_shape().size()));
  std::vector<double> y(static_cast<std::size_t>(n * g.output_shape().size()));
  for (double& v : x) v = std::uniform_real_distribution<double>(-1, 1)(rng);
  for (double& v : y) v = std::uniform_real_distribution<double>(-1, 1)(rng);
  DataSet data;
  data.xs = {{x.data(), static_cast<index_t>(x.size())}};
  data.ys = {{y.data(), static_cast<index_t>(y.size())}};
  data.n = n;
  const double step = time_steps(trainer, data, batches);
  // Forward, input gradient and weight gradient: three products of the
  // forward's flops; the weights (and their gradient) pass through memory
  // three times.
  const double P = double(g.positions()), KC = double(g.patch()), F = double(g.filters);
  const double flops = 3 * 2 * kBatch * P * KC * F;
  const double bytes =
      3 * 4 * P * KC * F + 3 * 4.0 * kBatch * (g.input_shape().size() + g.output_shape().size());
  return {w.id, w.desc, device_uses_gemm(g, kBatch) ? "batched GEMM" : "direct kernels", step,
          std::max(flops / floor.gemm_flops, bytes / floor.copy_bytes)};
}

// W7: the demo model of bench/run.R (tools/demo.R), one epoch of 60,000
// random 28x28 images (the Fashion-MNIST shapes), batch 64, Adam.
Row run_demo(const Floor& floor, std::mt19937_64& rng) {
  LocalGeometry first, second;
  first.rows = AxisWindow::make(28, 3, 2, Padding::valid);
  first.cols = AxisWindow::make(28, 3, 2, Padding::valid);
  first.channels = 1;
  first.filters = 16;
  second.rows = AxisWindow::make(13, 3, 2, Padding::valid);
  second.cols = AxisWindow::make(13, 3, 2, Padding::valid);
  second.channels = 16;
  second.filters = 32;
  std::vector<std::unique_ptr<Layer<float>>> layers;
  for (const LocalGeometry* g : {&first, &second}) {
    layers.push_back(std::make_unique<LocallyConnected<float>>(
        *g, Activation::relu, random_floats(rng, g->kernel_size(), 0.1f),
        random_floats(rng, g->bias_size(), 0.1f)));
  }
  layers.push_back(std::make_unique<Flatten<float>>(second.output_shape(), false));
  layers.push_back(std::make_unique<Dense<float>>(Shape{{1152}}, 128, Activation::relu,
                                                  random_floats(rng, 1152 * 128, 0.05f),
                                                  random_floats(rng, 128, 0.1f)));
  layers.push_back(
      std::make_unique<Dropout<float>>(Shape{{128}}, 0.3, std::vector<bool>{false, false}, 1));
  layers.push_back(std::make_unique<Dense<float>>(Shape{{128}}, 10, Activation::softmax,
                                                  random_floats(rng, 1280, 0.1f),
                                                  random_floats(rng, 10, 0.1f)));
  auto network = chain(std::move(layers));
  const TrainingSpec spec =
      spec_for(*network, LossKind::sparse_categorical_crossentropy, OptimizerKind::adam);
  DeviceTrainer trainer(std::move(network), spec);
  const index_t n = 60000;
  std::vector<double> x(static_cast<std::size_t>(n * 784)), y(static_cast<std::size_t>(n));
  for (double& v : x) v = std::uniform_real_distribution<double>(0, 1)(rng);
  for (double& v : y) v = double(std::uniform_int_distribution<int>(0, 9)(rng));
  DataSet data;
  data.xs = {{x.data(), static_cast<index_t>(x.size())}};
  data.ys = {{y.data(), n}};
  data.n = n;
  std::vector<index_t> order(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) order[i] = i;
  bool completed = false;
  auto keep_going = [](index_t, const Scores&) { return true; };
  std::vector<index_t> warm(order.begin(), order.begin() + 640);
  trainer.fit_epoch(data, warm, kBatch, 0, Context{}, keep_going, completed);
  cuda::synchronize();
  const Clock::time_point start = Clock::now();
  trainer.fit_epoch(data, order, kBatch, 0, Context{}, keep_going, completed);
  cuda::synchronize();
  const double epoch = seconds_since(start);
  const double per_sample_flops = 2.0 * (169 * 9 * 16 + 36 * 144 * 32 + 1152 * 128 + 1280);
  const double weights = 4.0 * (169 * 9 * 16 + 36 * 144 * 32 + 1152 * 128 + 1280);
  const double steps = std::ceil(double(n) / kBatch);
  const double floor_epoch = steps * std::max(3 * per_sample_flops * kBatch / floor.gemm_flops,
                                              3 * weights / floor.copy_bytes);
  return {"W7", "the demo model, one epoch of 60,000 (random) images", "mixed", epoch, floor_epoch};
}

}  // namespace

int main() {
  const cuda::DeviceReport report = cuda::query_devices();
  if (report.availability != cuda::Availability::available) {
    std::printf("no usable CUDA device (%s: %s)\n", cuda::availability_name(report.availability),
                report.detail.c_str());
    return 1;
  }
  const Floor floor = measure_floor();
  std::printf("Device: %s (compute capability %d.%d), CUDA runtime %d, driver %d\n\n",
              report.devices[0].name.c_str(), report.devices[0].major, report.devices[0].minor,
              report.runtime_version, report.driver_version);
  std::printf(
      "Floor measured in this run: cuBLAS SGEMM %.1f TFLOP/s (8192^3, FP32), "
      "device-to-device copy %.0f GB/s (read + write).\n\n",
      floor.gemm_flops / 1e12, floor.copy_bytes / 1e9);
  const std::vector<Workload> workloads = {
      {"W1", "2D 32×32×3 → 64 filters 3×3 valid", false, 32, 32, 3, 64, 3, 3, Padding::valid},
      {"W2", "2D 30×30×64 → 32 filters 3×3 valid", false, 30, 30, 64, 32, 3, 3, Padding::valid},
      {"W3", "2D 25×25×16 → 16 filters 5×5 valid", false, 25, 25, 16, 16, 5, 5, Padding::valid},
      {"W4", "2D 63×63×16 → 16 filters 9×9 valid", false, 63, 63, 16, 16, 9, 9, Padding::valid},
      {"W5", "1D 50,000×1 → 1 filter k=5 valid", true, 50000, 1, 1, 1, 5, 1, Padding::valid},
      {"W6", "2D 7×7×1024 → 256 filters 3×3 same", false, 7, 7, 1024, 256, 3, 3, Padding::same},
  };
  std::mt19937_64 rng(7);
  std::vector<Row> rows;
  for (const Workload& w : workloads) {
    rows.push_back(run_workload(w, floor, rng));
    std::fprintf(stderr, "%s done\n", w.id.c_str());
  }
  rows.push_back(run_demo(floor, rng));
  std::printf(
      "| id | workload | kernels | training step (ms, batch 64) | floor (ms) | step / floor |\n");
  std::printf("|---|---|---|---:|---:|---:|\n");
  for (const Row& r : rows) {
    const bool epoch = r.id == "W7";
    std::printf("| %s | %s | %s | %.3f%s | %.3f | %.2f |\n", r.id.c_str(), r.desc.c_str(),
                r.path.c_str(), r.step * 1e3, epoch ? " (epoch)" : "", r.floor * 1e3,
                r.step / r.floor);
  }
  return 0;
}
