// The device network and trainer (engine/device_network.hpp,
// device_trainer.hpp) against the CPU engine: every layer forward and
// backward, training with each optimizer, and bit-identical reruns. With
// `make test-cuda` the CUDA kernels run emulated on the host; in the nvcc
// build (`make test`) on the GPU, or skipped where there is none.
#include <cmath>
#include <iostream>
#include <memory>
#include <random>
#include <vector>

#include "activation_layer.hpp"
#include "batch_norm.hpp"
#include "check.hpp"
#include "convolution.hpp"
#include "cuda/device.hpp"
#include "dense.hpp"
#include "device_network.hpp"
#include "device_trainer.hpp"
#include "dropout.hpp"
#include "flatten.hpp"
#include "locally_connected.hpp"
#include "merge.hpp"
#include "pooling.hpp"
#include "reference.hpp"
#include "reshaping.hpp"

using namespace lcnn;

namespace {

// Float32 rounding of sums over a few hundred terms, relative.
constexpr double kTolerance = 2e-4;

bool device_usable() {
#ifdef LCNN_CUDA_EMULATE
  return true;
#else
  const cuda::DeviceReport report = cuda::query_devices();
  if (report.availability == cuda::Availability::available) return true;
  std::cout << "skipped: no CUDA device (" << cuda::availability_name(report.availability) << ": "
            << report.detail << ")\n";
  return false;
#endif
}

std::vector<float> random_values(std::mt19937_64& rng, index_t n, float scale = 1.0f) {
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (float& x : v) x = u(rng);
  return v;
}

struct LocalCase {
  bool one_d;
  index_t rows, cols, channels, kernel_rows, kernel_cols, stride_rows, stride_cols;
  Padding padding;
  DataFormat format;
  index_t filters;
};

LocalGeometry geometry_of(const LocalCase& c) {
  LocalGeometry g;
  g.rows = AxisWindow::make(c.rows, c.kernel_rows, c.stride_rows, c.padding);
  g.cols = c.one_d ? AxisWindow::make(1, 1, 1, Padding::valid)
                   : AxisWindow::make(c.cols, c.kernel_cols, c.stride_cols, c.padding);
  g.channels = c.channels;
  g.filters = c.filters;
  g.format = c.format;
  g.one_d = c.one_d;
  return g;
}

std::unique_ptr<Layer<float>> locally_connected(std::mt19937_64& rng, const LocalGeometry& g,
                                                Activation activation, bool bias = true) {
  std::vector<float> kernel = random_values(rng, g.kernel_size(), 0.5f);
  zero_unconnected(g, kernel.data());
  return std::make_unique<LocallyConnected<float>>(
      g, activation, kernel, bias ? random_values(rng, g.bias_size()) : std::vector<float>{});
}

std::unique_ptr<Layer<float>> dense(std::mt19937_64& rng, const Shape& input, index_t units,
                                    Activation activation) {
  return std::make_unique<Dense<float>>(input, units, activation,
                                        random_values(rng, input.dims.back() * units, 0.5f),
                                        random_values(rng, units));
}

std::unique_ptr<Network<float>> chain(std::vector<std::unique_ptr<Layer<float>>> layers) {
  Graph graph;
  graph.inputs = {layers.front()->input_shape()};
  for (std::size_t i = 0; i < layers.size(); ++i) graph.nodes.push_back({i, {i}});
  graph.outputs = {layers.size()};
  return std::make_unique<Network<float>>(std::move(graph), std::move(layers));
}

void check_close(const std::vector<float>& device, const std::vector<float>& cpu,
                 const std::string& what) {
  CHECK_MSG(device.size() == cpu.size(), what << ": " << device.size() << " vs " << cpu.size());
  if (device.size() != cpu.size()) return;
  double scale = 0;
  for (float v : cpu) scale = std::max(scale, std::abs(double(v)));
  std::size_t bad = 0, first_bad = 0;
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    if (std::abs(double(device[i]) - cpu[i]) > kTolerance * (1 + scale) && bad++ == 0) {
      first_bad = i;
    }
  }
  CHECK_MSG(bad == 0, what << ": " << bad << " of " << cpu.size() << " differ, first at "
                           << first_bad << ": " << device[first_bad] << " vs " << cpu[first_bad]);
}

std::vector<float> download(const cuda::Buffer<float>& buffer) {
  std::vector<float> host(buffer.size());
  buffer.download(host.data(), host.size());
  return host;
}

// Forward and backward of the network on the CPU and on the device with
// the same batch and output gradient: outputs and every parameter gradient
// agree (a layer's input gradient shows in the gradients of the layers
// before it).
// With `whole_inputs`, the inputs are -1, 0 or 1, so that values repeat.
// With `training` false, in inference mode. Afterwards every parameter
// (moving statistics too) agrees as well.
void check_network_parity(Network<float>& cpu, index_t batch, std::mt19937_64& rng,
                          const std::string& what, bool whole_inputs = false,
                          bool training = true) {
  DeviceNetwork device(cpu);
  Tensor<float> x;
  x.resize(cpu.input_shapes()[0].with_batch(batch));
  ref::assign(x.data, random_values(rng, x.shape.size()));
  if (whole_inputs) {
    for (float& v : x.data) v = std::round(1.4f * v);
  }
  Tensor<float> grad;
  grad.resize(cpu.output_shapes()[0].with_batch(batch));
  ref::assign(grad.data, random_values(rng, grad.shape.size()));

  Context ctx;
  ctx.training = training;
  ctx.record = true;
  ctx.seed = 1234;
  const Tensor<float>& cpu_out = *cpu.forward({&x}, ctx)[0];
  cpu.backward({&x}, {&grad}, {false}, ctx);

  cuda::Buffer<float> device_x, device_grad;
  device_x.upload(x.data.data(), x.data.size());
  device_grad.upload(grad.data.data(), grad.data.size());
  const float* out = device.forward(device_x.data(), batch, ctx);
  std::vector<float> device_out(cpu_out.data.size());
  cuda::copy_to_host(device_out.data(), out, device_out.size() * sizeof(float));
  check_close(device_out, ref::values_of(cpu_out.data), what + " forward");
  device.backward(device_x.data(), device_grad.data(), batch, false);
  const std::vector<cuda::Buffer<float>*> grads = device.parameter_gradients();
  std::size_t k = 0;
  for (std::size_t l = 0; l < cpu.layer_count(); ++l) {
    for (const ParameterBlock<float>& block : cpu.layer(l).parameters()) {
      check_close(download(*grads[k]), block.gradient,
                  what + " gradient of layer " + std::to_string(l + 1) + " " + block.name);
      ++k;
    }
  }
  CHECK_EQ(k, grads.size());
  const std::vector<cuda::Buffer<float>*> values = device.parameter_values();
  k = 0;
  for (std::size_t l = 0; l < cpu.layer_count(); ++l) {
    for (const ParameterBlock<float>& block : cpu.layer(l).parameters()) {
      check_close(download(*values[k]), block.values,
                  what + " values of layer " + std::to_string(l + 1) + " " + block.name);
      ++k;
    }
  }
}

const std::vector<LocalCase> kLocalCases = {
    // 2D, channels_last, valid, the GEMM path (8 filters, patch 3*3*2).
    {false, 7, 6, 2, 3, 3, 1, 1, Padding::valid, DataFormat::channels_last, 8},
    // 2D, channels_first, strides, kernel larger than the strides, GEMM.
    {false, 9, 8, 3, 3, 2, 2, 3, Padding::valid, DataFormat::channels_first, 9},
    // 2D "same" (Keras's locally connected centring), the direct kernels.
    {false, 6, 5, 2, 3, 2, 1, 2, Padding::same, DataFormat::channels_last, 3},
    // 2D "same", channels_first, GEMM.
    {false, 5, 5, 4, 3, 3, 2, 1, Padding::same, DataFormat::channels_first, 8},
    // 1D causal, GEMM (patch 4*3).
    {true, 11, 1, 3, 4, 1, 2, 1, Padding::causal, DataFormat::channels_last, 8},
    // 1D, one channel and one filter (the genomics shape): direct.
    {true, 40, 1, 1, 5, 1, 1, 1, Padding::valid, DataFormat::channels_last, 1},
    // 1D channels_first "same" with a stride, direct.
    {true, 13, 1, 2, 3, 1, 3, 1, Padding::same, DataFormat::channels_first, 2},
};

}  // namespace

TEST(device_locally_connected_parity) {
  if (!device_usable()) return;
  std::mt19937_64 rng(61);
  for (std::size_t i = 0; i < kLocalCases.size(); ++i) {
    const LocalCase& c = kLocalCases[i];
    const LocalGeometry g = geometry_of(c);
    const Shape in = g.input_shape();
    // A dense layer on the channel axis before the locally connected one
    // shows the latter's input gradient in its own gradients; channels
    // first puts a spatial axis last, which dense then mixes instead.
    std::vector<std::unique_ptr<Layer<float>>> layers;
    layers.push_back(dense(rng, in, in.dims.back(), Activation::linear));
    layers.push_back(locally_connected(rng, g, Activation::tanh, i % 2 == 0));
    auto cpu = chain(std::move(layers));
    for (index_t batch : {1, 5}) {
      check_network_parity(
          *cpu, batch, rng,
          "locally connected case " + std::to_string(i + 1) + ", batch " + std::to_string(batch));
    }
  }
}

TEST(device_activation_parity) {
  if (!device_usable()) return;
  std::mt19937_64 rng(62);
  const Activation kinds[] = {
      Activation::linear,     Activation::relu,  Activation::sigmoid, Activation::tanh,
      Activation::softmax,    Activation::elu,   Activation::selu,    Activation::softplus,
      Activation::softsign,   Activation::swish, Activation::gelu,    Activation::hard_sigmoid,
      Activation::exponential};
  for (Activation a : kinds) {
    // Dense with the activation, then an activation layer with the same one.
    std::vector<std::unique_ptr<Layer<float>>> layers;
    layers.push_back(dense(rng, Shape{{3, 6}}, 5, a));
    layers.push_back(std::make_unique<ActivationLayer<float>>(Shape{{3, 5}}, a));
    layers.push_back(dense(rng, Shape{{3, 5}}, 4, Activation::linear));
    auto cpu = chain(std::move(layers));
    check_network_parity(*cpu, 7, rng, "activation " + std::to_string(static_cast<int>(a)));
  }
}

TEST(device_gather_and_dropout_parity) {
  if (!device_usable()) return;
  std::mt19937_64 rng(63);
  const LocalGeometry g = geometry_of(kLocalCases[1]);
  const Shape out = g.output_shape();
  std::vector<std::unique_ptr<Layer<float>>> layers;
  layers.push_back(std::make_unique<PadCrop<float>>(Shape{{7, 8, 3}}, std::vector<index_t>{0, 1, 0},
                                                    std::vector<index_t>{-1, 0, 0}));
  layers.push_back(
      std::make_unique<Permute<float>>(Shape{{6, 9, 3}}, std::vector<std::size_t>{2, 0, 1}));
  layers.push_back(std::make_unique<Reshape<float>>(Shape{{3, 6, 9}}, Shape{{3, 9, 6}}));
  layers.push_back(std::make_unique<PadCrop<float>>(Shape{{3, 9, 6}}, std::vector<index_t>{0, 0, 1},
                                                    std::vector<index_t>{0, 0, 1}));
  layers.push_back(locally_connected(rng, g, Activation::relu));
  // Dropout with one mask value shared along the rows.
  layers.push_back(
      std::make_unique<Dropout<float>>(out, 0.4, std::vector<bool>{false, false, true, false}, 3));
  layers.push_back(std::make_unique<Flatten<float>>(out, true));
  layers.push_back(std::make_unique<Dropout<float>>(Shape{{out.size()}}, 0.25,
                                                    std::vector<bool>{false, false}, 4));
  layers.push_back(dense(rng, Shape{{out.size()}}, 3, Activation::softmax));
  auto cpu = chain(std::move(layers));
  check_network_parity(*cpu, 4, rng, "pad, permute, reshape, dropout, flatten");
}

// Convolutions: 1D/2D, both data formats, valid/same/causal, strides,
// dilation, groups; a dense layer before shows the input gradient.
TEST(device_convolution_parity) {
  if (!device_usable()) return;
  std::mt19937_64 rng(68);
  struct ConvCase {
    bool one_d;
    index_t rows, cols, channels, filters, kernel_rows, kernel_cols, stride_rows, stride_cols,
        dilation_rows, dilation_cols, groups;
    Padding padding;
    DataFormat format;
    Activation activation;
  };
  const std::vector<ConvCase> cases = {
      {false, 7, 6, 3, 4, 3, 3, 1, 1, 1, 1, 1, Padding::valid, DataFormat::channels_last,
       Activation::relu},
      {false, 8, 7, 4, 6, 3, 2, 2, 1, 1, 2, 2, Padding::same, DataFormat::channels_first,
       Activation::tanh},
      {false, 9, 9, 2, 2, 3, 3, 2, 2, 2, 1, 1, Padding::same, DataFormat::channels_last,
       Activation::linear},
      {true, 12, 1, 3, 5, 3, 1, 1, 1, 2, 1, 1, Padding::causal, DataFormat::channels_last,
       Activation::sigmoid},
      {true, 11, 1, 4, 4, 4, 1, 3, 1, 1, 1, 4, Padding::valid, DataFormat::channels_first,
       Activation::linear},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const ConvCase& c = cases[i];
    ConvGeometry g;
    g.rows =
        AxisWindow::convolution(c.rows, c.kernel_rows, c.stride_rows, c.dilation_rows, c.padding);
    g.cols = c.one_d ? AxisWindow::convolution(1, 1, 1, 1, Padding::valid)
                     : AxisWindow::convolution(c.cols, c.kernel_cols, c.stride_cols,
                                               c.dilation_cols, c.padding);
    g.channels = c.channels;
    g.filters = c.filters;
    g.groups = c.groups;
    g.format = c.format;
    g.one_d = c.one_d;
    const Shape in = g.input_shape();
    std::vector<std::unique_ptr<Layer<float>>> layers;
    layers.push_back(dense(rng, in, in.dims.back(), Activation::linear));
    layers.push_back(std::make_unique<Convolution<float>>(
        g, c.activation, random_values(rng, g.kernel_shape().size(), 0.5f),
        i % 2 == 0 ? random_values(rng, c.filters) : std::vector<float>{}));
    auto cpu = chain(std::move(layers));
    for (index_t batch : {1, 5}) {
      check_network_parity(
          *cpu, batch, rng,
          "convolution case " + std::to_string(i + 1) + ", batch " + std::to_string(batch));
    }
  }
}

// Batch normalization in training (batch statistics, moving statistics
// updated) and inference, scaled and centred or not, on channels of several
// axes; batches large enough for several summing chunks per channel.
TEST(device_batch_norm_parity) {
  if (!device_usable()) return;
  std::mt19937_64 rng(69);
  struct NormCase {
    Shape input;
    index_t axis;
    bool scale, center, training;
    index_t batch;
  };
  const std::vector<NormCase> cases = {
      {Shape{{6, 5, 3}}, 2, true, true, true, 7},
      {Shape{{6, 5, 3}}, 0, false, true, true, 4},
      {Shape{{8}}, 0, true, false, true, 5},
      {Shape{{40, 30, 2}}, 2, true, true, true, 30},  // 36,000 values a channel: 3 chunks
      {Shape{{6, 5, 3}}, 1, true, true, false, 3},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const NormCase& c = cases[i];
    const index_t C = c.input[c.axis];
    BatchNormOptions options;
    options.axis = c.axis;
    options.unbiased_moving_variance = i % 2 == 0;
    std::vector<float> variance = random_values(rng, C, 0.5f);
    for (float& v : variance) v += 1.0f;
    // No bias before the normalization: its exact gradient is zero (the
    // normalization's input gradient sums to zero over each channel), and
    // float32 leaves only rounding noise of the 36,000 terms there.
    const index_t D = c.input.dims.back();
    std::vector<std::unique_ptr<Layer<float>>> layers;
    layers.push_back(std::make_unique<Dense<float>>(c.input, D, Activation::linear,
                                                    random_values(rng, D * D, 0.5f),
                                                    std::vector<float>{}));
    layers.push_back(std::make_unique<BatchNorm<float>>(
        c.input, options, c.scale ? random_values(rng, C) : std::vector<float>{},
        c.center ? random_values(rng, C) : std::vector<float>{}, random_values(rng, C),
        variance));
    layers.push_back(dense(rng, c.input, 2, Activation::linear));
    auto cpu = chain(std::move(layers));
    const std::string what = "batch normalization case " + std::to_string(i + 1);
    check_network_parity(*cpu, c.batch, rng, what, false, c.training);
  }
}

// The dense layer before the pooling shows its input gradient. Its first
// input channel has zero weights and the inputs repeat, so windows hold
// ties of equal outputs from different inputs: where the gradient of a tied
// maximum goes shows in that channel's weight gradient.
TEST(device_pooling_parity) {
  if (!device_usable()) return;
  std::mt19937_64 rng(67);
  struct PoolCase {
    bool one_d;
    index_t rows, cols, channels, kernel_rows, kernel_cols, stride_rows, stride_cols;
    Padding padding;
    DataFormat format;
    PoolMode mode;
    MaxTies ties;
    bool global;
  };
  const std::vector<PoolCase> cases = {
      {false, 7, 6, 3, 2, 2, 2, 2, Padding::valid, DataFormat::channels_last, PoolMode::max,
       MaxTies::first, false},
      {false, 7, 5, 2, 3, 2, 2, 1, Padding::same, DataFormat::channels_first, PoolMode::average,
       MaxTies::first, false},
      {false, 5, 4, 3, 3, 3, 1, 1, Padding::same, DataFormat::channels_last, PoolMode::max,
       MaxTies::first, false},
      {true, 9, 1, 2, 3, 1, 2, 1, Padding::same, DataFormat::channels_last, PoolMode::average,
       MaxTies::first, false},
      {false, 4, 3, 3, 4, 3, 1, 1, Padding::valid, DataFormat::channels_last, PoolMode::max,
       MaxTies::split, true},
      {true, 6, 1, 4, 6, 1, 1, 1, Padding::valid, DataFormat::channels_first, PoolMode::average,
       MaxTies::first, true},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const PoolCase& c = cases[i];
    LocalGeometry g;
    g.rows =
        AxisWindow::make(c.rows, c.kernel_rows, c.stride_rows, c.padding, SamePadding::convolution);
    g.cols = c.one_d ? AxisWindow::make(1, 1, 1, Padding::valid)
                     : AxisWindow::make(c.cols, c.kernel_cols, c.stride_cols, c.padding,
                                        SamePadding::convolution);
    g.channels = g.filters = c.channels;
    g.format = c.format;
    g.one_d = c.one_d;
    const Shape in = g.input_shape();
    const Shape out = c.global ? Shape{{c.channels}} : g.output_shape();
    std::vector<std::unique_ptr<Layer<float>>> layers;
    const index_t D = in.dims.back();
    std::vector<float> kernel = random_values(rng, D * D, 0.5f);
    for (index_t f = 0; f < D; ++f) kernel[f * D] = 0;
    layers.push_back(
        std::make_unique<Dense<float>>(in, D, Activation::linear, kernel, random_values(rng, D)));
    layers.push_back(std::make_unique<Pooling<float>>(g, c.mode, out, c.ties));
    layers.push_back(dense(rng, out, 2, Activation::linear));
    auto cpu = chain(std::move(layers));
    check_network_parity(*cpu, 6, rng, "pooling case " + std::to_string(i + 1), true);
  }
}

namespace {

struct TrainingCase {
  std::string name;
  LossSpec loss;
  Activation output;
  OptimizerSpec optimizer;
  bool sample_weights;
};

OptimizerSpec optimizer(OptimizerKind kind, double lr) {
  OptimizerSpec s;
  s.kind = kind;
  s.learning_rate = lr;
  return s;
}

TrainingSpec training_spec(const TrainingCase& c, std::size_t blocks) {
  TrainingSpec spec;
  OutputSpec out;
  out.loss = c.loss;
  out.metrics = {is_sparse(c.loss) ? MetricKind::sparse_categorical_accuracy : MetricKind::mae};
  spec.outputs = {out};
  spec.optimizer = c.optimizer;
  spec.trainable.assign(blocks, true);
  spec.trainable[1] = false;  // the first layer's bias stays
  spec.penalties.assign(blocks, Penalty{});
  spec.constraints.assign(blocks, ConstraintSpec{});
  return spec;
}

// LC 2D (8 filters: the GEMM path) -> flatten -> dropout -> dense with the
// case's output activation, classes = 3.
std::unique_ptr<Network<float>> small_model(Activation output) {
  std::mt19937_64 rng(64);
  const LocalGeometry g = geometry_of(kLocalCases[0]);
  std::vector<std::unique_ptr<Layer<float>>> layers;
  layers.push_back(locally_connected(rng, g, Activation::relu));
  layers.push_back(std::make_unique<Flatten<float>>(g.output_shape(), false));
  layers.push_back(std::make_unique<Dropout<float>>(Shape{{g.output_shape().size()}}, 0.3,
                                                    std::vector<bool>{false, false}, 9));
  layers.push_back(dense(rng, Shape{{g.output_shape().size()}}, 3, output));
  return chain(std::move(layers));
}

struct Data {
  std::vector<double> x, y, weights;
  index_t n;
};

Data make_data(const TrainingCase& c, index_t n) {
  std::mt19937_64 rng(65);
  Data d;
  d.n = n;
  const index_t features = geometry_of(kLocalCases[0]).input_shape().size();
  for (float v : random_values(rng, n * features)) d.x.push_back(v);
  std::uniform_int_distribution<int> label(0, 2);
  if (is_sparse(c.loss)) {
    for (index_t i = 0; i < n; ++i) d.y.push_back(label(rng));
  } else {
    d.y.assign(static_cast<std::size_t>(n * 3), 0.0);
    for (index_t i = 0; i < n; ++i) {
      d.y[i + n * label(rng)] = 1.0;
    }
  }
  if (c.sample_weights) {
    for (index_t i = 0; i < n; ++i) d.weights.push_back(0.5 + (i % 3));
  }
  return d;
}

DataSet data_set(const Data& d) {
  DataSet set;
  set.xs = {{d.x.data(), static_cast<index_t>(d.x.size())}};
  set.ys = {{d.y.data(), static_cast<index_t>(d.y.size())}};
  set.weights = d.weights.empty() ? nullptr : d.weights.data();
  set.n = d.n;
  return set;
}

std::vector<TrainingCase> training_cases() {
  OptimizerSpec momentum = optimizer(OptimizerKind::sgd, 0.05);
  momentum.momentum = 0.9;
  OptimizerSpec nesterov = momentum;
  nesterov.nesterov = true;
  OptimizerSpec amsgrad = optimizer(OptimizerKind::adam, 0.01);
  amsgrad.amsgrad = true;
  OptimizerSpec centered = optimizer(OptimizerKind::rmsprop, 0.01);
  centered.centered = true;
  centered.momentum = 0.5;
  return {
      {"mse, sgd", parse_loss("mse", false, 1), Activation::linear,
       optimizer(OptimizerKind::sgd, 0.05), false},
      {"mae, sgd momentum, weights", parse_loss("mae", false, 1), Activation::tanh, momentum, true},
      {"categorical crossentropy on softmax, nesterov",
       parse_loss("categorical_crossentropy", false, 1), Activation::softmax, nesterov, false},
      {"sparse crossentropy from logits, adam",
       parse_loss("sparse_categorical_crossentropy", true, 1), Activation::linear,
       optimizer(OptimizerKind::adam, 0.01), true},
      {"binary crossentropy on sigmoid, adam amsgrad", parse_loss("binary_crossentropy", false, 1),
       Activation::sigmoid, amsgrad, false},
      {"huber, rmsprop centered momentum", parse_loss("huber", false, 1), Activation::linear,
       centered, false},
      {"categorical crossentropy from logits, adagrad",
       parse_loss("categorical_crossentropy", true, 1), Activation::linear,
       optimizer(OptimizerKind::adagrad, 0.05), false},
  };
}

void check_scores(const Scores& device, const Scores& cpu, const std::string& what) {
  CHECK_MSG(check::near(device.loss, cpu.loss, 1e-3),
            what << " loss " << device.loss << " vs " << cpu.loss);
  CHECK_EQ(device.metrics.size(), cpu.metrics.size());
  for (std::size_t m = 0; m < cpu.metrics.size() && m < device.metrics.size(); ++m) {
    CHECK_MSG(check::near(device.metrics[m], cpu.metrics[m], 1e-3),
              what << " metric " << device.metrics[m] << " vs " << cpu.metrics[m]);
  }
}

}  // namespace

namespace {

// Two epochs of 23 samples in batches of 8 (a short last batch), shuffled
// the same way: the device trainer ends where the CPU trainer does, with
// the same scores, gradients and optimizer state.
void check_trainer_parity(const TrainingCase& c, const TrainingSpec& spec,
                          const std::string& what) {
  const Data d = make_data(c, 23);
  const DataSet set = data_set(d);
  Trainer<float> cpu(small_model(c.output), spec);
  DeviceTrainer device(small_model(c.output), spec);
  CHECK_EQ(device.parameters().size(), cpu.parameters().size());
  Context ctx;
  std::vector<index_t> order(23);
  for (index_t i = 0; i < 23; ++i) order[i] = (i * 7) % 23;
  bool completed = false;
  auto keep_going = [](index_t, const Scores&) { return true; };
  for (int epoch = 0; epoch < 2; ++epoch) {
    const std::uint64_t seed = 100 + epoch;
    const Scores cpu_scores = cpu.fit_epoch(set, order, 8, seed, ctx, keep_going, completed);
    const Scores device_scores = device.fit_epoch(set, order, 8, seed, ctx, keep_going, completed);
    CHECK(completed);
    check_scores(device_scores, cpu_scores, what + ", epoch " + std::to_string(epoch + 1));
  }
  CHECK_EQ(device.iterations(), cpu.iterations());
  const auto cpu_parameters = cpu.parameters(), device_parameters = device.parameters();
  for (std::size_t b = 0; b < cpu_parameters.size(); ++b) {
    check_close(std::vector<float>(device_parameters[b].begin(), device_parameters[b].end()),
                std::vector<float>(cpu_parameters[b].begin(), cpu_parameters[b].end()),
                what + ", parameters of block " + std::to_string(b + 1));
  }
  const auto cpu_slots = cpu.optimizer_slots(), device_slots = device.optimizer_slots();
  CHECK_EQ(device_slots.size(), cpu_slots.size());
  for (std::size_t b = 0; b < cpu_slots.size() && b < device_slots.size(); ++b) {
    check_close(std::vector<float>(device_slots[b].begin(), device_slots[b].end()),
                std::vector<float>(cpu_slots[b].begin(), cpu_slots[b].end()),
                what + ", optimizer slots of block " + std::to_string(b + 1));
  }
  check_scores(device.evaluate(set, 5, ctx), cpu.evaluate(set, 5, ctx), what + ", evaluate");
  const auto cpu_grads = cpu.gradients(set, 5, ctx), device_grads = device.gradients(set, 5, ctx);
  for (std::size_t b = 0; b < cpu_grads.size(); ++b) {
    check_close(std::vector<float>(device_grads[b].begin(), device_grads[b].end()),
                std::vector<float>(cpu_grads[b].begin(), cpu_grads[b].end()),
                what + ", gradients of block " + std::to_string(b + 1));
  }
}

}  // namespace

TEST(device_trainer_parity) {
  if (!device_usable()) return;
  for (const TrainingCase& c : training_cases()) check_trainer_parity(c, training_spec(c, 4), c.name);
}

// Weight penalties (their value in the loss, their gradient), activity
// penalties (on the locally connected layer's outputs and on the network's
// output, whose loss then takes the probabilities) and constraints (a max
// norm per dense unit, non-negative biases).
TEST(device_trainer_penalties_and_constraints) {
  if (!device_usable()) return;
  for (const TrainingCase& c : {training_cases()[0], training_cases()[2], training_cases()[3]}) {
    TrainingSpec spec = training_spec(c, 4);
    spec.activity.assign(4, Penalty{});
    spec.activity[0] = {0.001, 0.002};
    spec.activity[3] = {0.01, 0.0};
    spec.penalties[0] = {0.01, 0.02};
    spec.penalties[1] = {0.0, 0.5};  // a frozen block's penalty counts in the loss only
    spec.penalties[2] = {0.0, 0.05};
    const index_t D = geometry_of(kLocalCases[0]).output_shape().size();
    spec.constraints[2].kind = ConstraintKind::maxnorm;
    spec.constraints[2].max_value = 0.5;
    for (index_t i = 0; i < D * 3; ++i) spec.constraints[2].group.push_back(1 + i / D);
    spec.constraints[3].kind = ConstraintKind::nonneg;
    check_trainer_parity(c, spec, c.name + ", penalties and constraints");
  }
}

// predict() on the device and the CPU; parameters and optimizer state set
// from the host come back unchanged.
TEST(device_predict_and_state) {
  if (!device_usable()) return;
  const TrainingCase c = training_cases()[3];
  const Data d = make_data(c, 11);
  auto cpu = small_model(c.output);
  DeviceTrainer device(small_model(c.output), training_spec(c, 4));
  const index_t outputs = 3;
  std::vector<double> cpu_y(static_cast<std::size_t>(11 * outputs)), device_y(cpu_y.size());
  Context ctx;
  cpu->predict({d.x.data()}, 11, 4, ctx, {cpu_y.data()});
  device.network().predict({d.x.data()}, 11, 4, ctx, {device_y.data()});
  check_close(std::vector<float>(device_y.begin(), device_y.end()),
              std::vector<float>(cpu_y.begin(), cpu_y.end()), "predict");

  std::vector<std::vector<double>> values = device.parameters();
  for (auto& block : values) {
    for (double& v : block) v = 0.25 * v + 0.125;
  }
  device.set_parameters(values);
  CHECK(device.parameters() == values);
  std::vector<std::vector<float>> slots;
  std::vector<ValueBytes> slot_bytes;
  std::vector<std::vector<double>> slots_as_doubles;
  for (std::size_t b = 0; b < values.size(); ++b) {
    if (b == 1) continue;  // not trained
    slots.push_back(std::vector<float>(2 * values[b].size(), 0.5f));
    slots_as_doubles.push_back(std::vector<double>(slots.back().size(), 0.5));
  }
  for (const auto& slot : slots) slot_bytes.push_back({slot.data(), slot.size() * sizeof(float)});
  device.restore_optimizer(7, slot_bytes);
  CHECK_EQ(device.iterations(), 7.0);
  CHECK(device.optimizer_slots() == slots_as_doubles);
  CHECK_THROWS(device.restore_optimizer(7, {{slots[0].data(), 6}}), std::invalid_argument);
  device.set_learning_rate(0.5);
  CHECK_EQ(device.learning_rate(), 0.5);
  CHECK_THROWS(device.set_parameters({values[0]}), std::invalid_argument);
}

// Same seed, same data: two trainings on the device give the same bits
// (no atomics; reductions in a fixed order).
TEST(device_training_is_deterministic) {
  if (!device_usable()) return;
  const TrainingCase c = training_cases()[3];
  const Data d = make_data(c, 23);
  const DataSet set = data_set(d);
  std::vector<std::vector<double>> results[2];
  for (auto& result : results) {
    DeviceTrainer device(small_model(c.output), training_spec(c, 4));
    std::vector<index_t> order(23);
    for (index_t i = 0; i < 23; ++i) order[i] = i;
    bool completed = false;
    device.fit_epoch(
        set, order, 8, 42, Context{}, [](index_t, const Scores&) { return true; }, completed);
    result = device.parameters();
  }
  CHECK(results[0] == results[1]);
}

TEST(device_unsupported) {
  if (!device_usable()) return;
  std::mt19937_64 rng(66);
  // Two dense branches added: a merge, and not a chain.
  Graph graph;
  graph.inputs = {Shape{{4}}};
  graph.nodes = {{0, {0}}, {1, {0}}, {2, {1, 2}}};
  graph.outputs = {3};
  std::vector<std::unique_ptr<Layer<float>>> layers;
  layers.push_back(dense(rng, Shape{{4}}, 3, Activation::relu));
  layers.push_back(dense(rng, Shape{{4}}, 3, Activation::relu));
  layers.push_back(std::make_unique<Merge<float>>(MergeKind::add,
                                                  std::vector<Shape>{Shape{{3}}, Shape{{3}}}, 0));
  Network<float> merged(std::move(graph), std::move(layers));
  CHECK_THROWS(DeviceNetwork{merged}, DeviceUnsupported);
  const DeviceSupport support = device_support(merged);
  CHECK(!support.supported);
  CHECK_EQ(support.layer, 2L);
  CHECK(device_support(*small_model(Activation::linear)).supported);
  // A spec that does not fit the network.
  TrainingSpec short_spec = training_spec(training_cases()[0], 4);
  short_spec.trainable.pop_back();
  CHECK_THROWS(DeviceTrainer(small_model(Activation::linear), short_spec), std::invalid_argument);
  TrainingSpec two_losses = training_spec(training_cases()[0], 4);
  two_losses.outputs.push_back(two_losses.outputs[0]);
  CHECK_THROWS(DeviceTrainer(small_model(Activation::linear), two_losses), std::invalid_argument);
}
