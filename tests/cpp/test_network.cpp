// Network: chaining, mini-batching, threads, shape errors.
#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <vector>

#include "activation_layer.hpp"
#include "check.hpp"
#include "dense.hpp"
#include "flatten.hpp"
#include "locally_connected.hpp"
#include "network.hpp"
#include "reference.hpp"
#include "same_networks.hpp"

using namespace lcnn;

namespace {

struct LayerDef {
  ref::Spec spec;
  std::string activation;
  std::vector<double> w1, bias;  // C-order Keras arrays
};

template <typename T>
std::unique_ptr<Layer<T>> make_layer(const LayerDef& d,
                                     LocalKernels kernels = LocalKernels::automatic) {
  const LocalGeometry g = ref::geometry_of(d.spec);
  if (!ref::same_shapes(g, d.spec)) throw std::runtime_error("engine shapes differ");
  std::vector<T> kernel(static_cast<std::size_t>(g.kernel_size())), bias;
  const auto col = ref::c_to_colmajor(d.w1, d.spec.w1_dims());
  kernel_from_keras(g, 1, col.data(), kernel.data());
  if (!d.bias.empty()) {
    bias.resize(static_cast<std::size_t>(g.bias_size()));
    const auto bcol = ref::c_to_colmajor(d.bias, d.spec.bias_dims());
    bias_from_keras(g, bcol.data(), bias.data());
  }
  return std::make_unique<LocallyConnected<T>>(g, parse_activation(d.activation), kernel, bias,
                                               kernels);
}

// A chain of the layers: value 0 is the input, node i reads value i.
template <typename T>
std::unique_ptr<Network<T>> make_network(const std::vector<LayerDef>& defs) {
  Graph graph;
  std::vector<std::unique_ptr<Layer<T>>> layers;
  for (std::size_t i = 0; i < defs.size(); ++i) {
    layers.push_back(make_layer<T>(defs[i]));
    graph.nodes.push_back({i, {i}});
  }
  if (!layers.empty()) graph.inputs = {layers.front()->input_shape()};
  graph.outputs = {defs.size()};
  return std::make_unique<Network<T>>(std::move(graph), std::move(layers));
}

LayerDef random_layer(std::mt19937_64& rng, ref::Spec s, const std::string& activation,
                      bool bias = true) {
  LayerDef d{s, activation, {}, {}};
  d.w1 = ref::random_vector(rng, s.P() * s.KC() * s.F);
  if (bias) d.bias = ref::random_vector(rng, s.P() * s.F);
  return d;
}

ref::Spec spec2d(ref::Dims n, ref::Dims k, ref::Dims s, const char* pad, bool last, long C,
                 long F) {
  ref::Spec sp;
  sp.n = n;
  sp.k = k;
  sp.s = s;
  sp.padding = pad;
  sp.last = last;
  sp.C = C;
  sp.F = F;
  return sp;
}

// Two test networks: 2D channels_last (7x6x2 -> 5x3x3 -> 5x3x2 softmax) and
// 1D channels_first with causal then same padding.
std::vector<std::vector<LayerDef>> test_networks() {
  std::mt19937_64 rng(2024);
  std::vector<std::vector<LayerDef>> nets;
  nets.push_back({random_layer(rng, spec2d({7, 6}, {3, 2}, {1, 2}, "valid", true, 2, 3), "relu"),
                  random_layer(rng, spec2d({5, 3}, {2, 2}, {1, 1}, "same", true, 3, 2),
                               "softmax")});
  nets.push_back({random_layer(rng, spec2d({9}, {3}, {2}, "causal", false, 2, 4), "tanh", false),
                  random_layer(rng, spec2d({5}, {2}, {1}, "same", false, 4, 3), "softmax")});
  return nets;
}

// Reference for a chain of layers on C-order x (n samples).
std::vector<double> reference_chain(const std::vector<LayerDef>& defs, std::vector<double> x,
                                    long n) {
  for (const auto& d : defs) x = ref::forward_impl1(d.spec, x, n, d.w1, d.bias, d.activation);
  return x;
}

ref::Dims with_batch(long n, const ref::Dims& d) {
  ref::Dims out{n};
  out.insert(out.end(), d.begin(), d.end());
  return out;
}

}  // namespace

TEST(network_chain_and_minibatches) {
  for (const auto& defs : test_networks()) {
    const long n = 7;
    std::mt19937_64 rng(5);
    const ref::Dims xdims = with_batch(n, defs.front().spec.input_dims());
    const ref::Dims ydims = with_batch(n, defs.back().spec.output_dims());
    const auto x = ref::random_vector(rng, ref::prod(xdims));
    const auto want = reference_chain(defs, x, n);
    const auto x_col = ref::c_to_colmajor(x, xdims);

    auto net = make_network<double>(defs);
    CHECK(net->input_shapes().front() == make_layer<double>(defs.front())->input_shape());
    CHECK(net->output_shapes().front() == make_layer<double>(defs.back())->output_shape());
    std::vector<double> full;
    for (long bs : {1L, 3L, n, 100L}) {
      std::vector<double> y(static_cast<std::size_t>(ref::prod(ydims)), -99.0);
      net->predict({x_col.data()}, n, bs, Context{}, {y.data()});
      const auto y_c = ref::colmajor_to_c(y, ydims);
      const double err = ref::max_rel_error(y_c, want);
      CHECK_MSG(err <= 1e-12, defs.front().spec.describe() << " batch_size " << bs << " error "
                                                           << err);
      if (full.empty()) {
        full = y;
      } else {
        CHECK_MSG(ref::max_rel_error(y, full) <= 1e-14, "batch_size " << bs << " vs 1");
      }
    }
    // no samples: nothing to do, nothing written
    net->predict({x_col.data()}, 0, 3, Context{}, {nullptr});
    CHECK(true);
  }
}

// predict() hands a network input's batch, as R holds it, to the one layer
// that reads it (Layer::forward_from()), and a layer on the direct kernels
// writes its output, activated, into R's result (Layer::writes_result()),
// for any activation but softmax. The results must be those of forward()
// on the batch converted into a tensor, bit for bit, for every batch size;
// so must they be when two layers read the input (which predict() then
// converts once for both), and when the output also feeds another layer (so
// the layer fills its output tensor and predict() copies it).
template <typename T>
void check_predict_from_r_arrays(const ref::Spec& spec, LocalKernels kernels, index_t n,
                                 const std::string& activation = "relu") {
  std::mt19937_64 rng(31);
  const LayerDef def = random_layer(rng, spec, activation);
  const std::string what = spec.describe() + " " + activation +
                           (kernels == LocalKernels::gemm ? " gemm" : " direct");
  auto alone = make_layer<T>(def, kernels);
  CHECK_MSG(alone->writes_result() == (kernels == LocalKernels::direct && activation != "softmax"),
            what);
  const Shape in = alone->input_shape(), out = alone->output_shape();
  const auto x = ref::random_vector(rng, n * in.size());

  Context record;
  record.record = true;
  Tensor<T> ignored;
  CHECK_MSG(!alone->forward_from(DoubleBatch{x.data(), n, n}, ignored, record), what);
  CHECK_MSG(alone->forward_from(DoubleBatch{x.data(), n, n}, ignored, Context{}) ==
                (kernels == LocalKernels::gemm),
            what);

  Graph graph;
  graph.inputs = {in};
  graph.nodes = {{0, {0}}};
  graph.outputs = {1};
  std::vector<std::unique_ptr<Layer<T>>> layers;
  layers.push_back(make_layer<T>(def, kernels));
  Network<T> single(graph, std::move(layers));
  graph.nodes = {{0, {0}}, {1, {0}}};
  graph.outputs = {1, 2};
  layers.clear();
  layers.push_back(make_layer<T>(def, kernels));
  layers.push_back(make_layer<T>(def, kernels));
  Network<T> twice(graph, std::move(layers));
  graph.nodes = {{0, {0}}, {1, {1}}};
  layers.clear();
  layers.push_back(make_layer<T>(def, kernels));
  layers.push_back(std::make_unique<ActivationLayer<T>>(out, Activation::tanh));
  Network<T> feeding(graph, std::move(layers));

  for (index_t bs : {index_t(1), index_t(3), n}) {
    std::vector<double> want(static_cast<std::size_t>(n * out.size()));
    for (index_t start = 0; start < n; start += bs) {
      const index_t count = std::min(bs, n - start);
      Tensor<T> batch, y;
      batch.resize(in.with_batch(count));
      for (index_t f = 0; f < in.size(); ++f) {
        for (index_t b = 0; b < count; ++b) {
          batch.data[b + f * count] = static_cast<T>(x[start + b + f * n]);
        }
      }
      alone->forward(batch, y, Context{});
      for (index_t f = 0; f < out.size(); ++f) {
        for (index_t b = 0; b < count; ++b) want[start + b + f * n] = y.data[b + f * count];
      }
    }
    std::vector<double> y(want.size(), -99.0), first(want.size(), -99.0), second = first;
    single.predict({x.data()}, n, bs, Context{}, {y.data()});
    CHECK_MSG(y == want, what << " batch_size " << bs);
    twice.predict({x.data()}, n, bs, Context{}, {first.data(), second.data()});
    CHECK_MSG(first == want && second == want, what << " read twice, batch_size " << bs);
    std::fill(first.begin(), first.end(), -99.0);
    feeding.predict({x.data()}, n, bs, Context{}, {first.data(), second.data()});
    CHECK_MSG(first == want, what << " feeding a layer, batch_size " << bs);
    const auto tanh_of = [](double v) { return static_cast<double>(std::tanh(static_cast<T>(v))); };
    CHECK_MSG(std::equal(second.begin(), second.end(), first.begin(),
                         [&](double got, double of) { return got == tanh_of(of); }),
              what << " fed layer, batch_size " << bs);
  }
}

TEST(network_predict_takes_r_arrays_into_the_first_layer) {
  const std::vector<ref::Spec> specs = {
      spec2d({6, 5}, {3, 2}, {1, 2}, "valid", true, 3, 8),
      spec2d({10, 4}, {2, 2}, {1, 1}, "valid", true, 10, 4),
      spec2d({5, 6}, {3, 3}, {2, 1}, "same", false, 2, 7),
      spec2d({9}, {4}, {2}, "valid", true, 5, 6),
      spec2d({8}, {3}, {1}, "same", false, 3, 9),
      spec2d({12}, {3}, {2}, "same", true, 1, 4)};
  for (const ref::Spec& spec : specs) {
    for (LocalKernels kernels : {LocalKernels::gemm, LocalKernels::direct}) {
      for (const char* activation : {"relu", "linear", "gelu", "softmax"}) {
        check_predict_from_r_arrays<float>(spec, kernels, 7, activation);
        check_predict_from_r_arrays<double>(spec, kernels, 7, activation);
      }
    }
  }
}

// A result of 2 MiB or more is written with streaming stores: 11 samples of
// 4,096 positions by 8 filters (2.9 MB of doubles), each run of a batch's
// samples starting 11 values after the last, so at either alignment, and
// runs of 1, 3 and 11 values.
TEST(network_predict_streams_a_large_result_into_r_arrays) {
  const ref::Spec spec = spec2d({4096}, {1}, {1}, "valid", true, 1, 8);
  for (LocalKernels kernels : {LocalKernels::gemm, LocalKernels::direct}) {
    check_predict_from_r_arrays<float>(spec, kernels, 11);
    check_predict_from_r_arrays<double>(spec, kernels, 11);
  }
}

TEST(network_threads_agree) {
  for (const auto& defs : test_networks()) {
    const long n = 11;
    std::mt19937_64 rng(6);
    const ref::Dims xdims = with_batch(n, defs.front().spec.input_dims());
    const ref::Dims ydims = with_batch(n, defs.back().spec.output_dims());
    const auto x_col = ref::random_vector(rng, ref::prod(xdims));
    const auto want = reference_chain(defs, ref::colmajor_to_c(x_col, xdims), n);
    auto net = make_network<float>(defs);
    std::vector<double> y1(static_cast<std::size_t>(ref::prod(ydims))), y2(y1.size());
    Context one, two;
    one.threads = 1;
    two.threads = 2;
    net->predict({x_col.data()}, n, 4, one, {y1.data()});
    net->predict({x_col.data()}, n, 4, two, {y2.data()});
    CHECK_MSG(ref::max_rel_error(y2, y1) <= 1e-6, "threads 1 vs 2");
    CHECK_MSG(ref::max_rel_error(ref::colmajor_to_c(y1, ydims), want) <= 2e-5,
              "float32 network vs reference");
  }
  // and a wide layer so that both threads get many positions
  std::mt19937_64 rng(8);
  std::vector<LayerDef> wide = {
      random_layer(rng, spec2d({20, 20}, {3, 3}, {1, 1}, "same", false, 3, 8), "gelu")};
  auto net = make_network<double>(wide);
  const long n = 6;
  const ref::Dims xdims = with_batch(n, wide[0].spec.input_dims());
  const auto x_col = ref::random_vector(rng, ref::prod(xdims));
  std::vector<double> y1(static_cast<std::size_t>(n * net->output_shapes().front().size())), y2(y1.size());
  Context one, two;
  two.threads = 2;
  net->predict({x_col.data()}, n, n, one, {y1.data()});
  net->predict({x_col.data()}, n, n, two, {y2.data()});
  CHECK(ref::max_rel_error(y2, y1) <= 1e-14);
}

TEST(network_shape_errors) {
  std::mt19937_64 rng(9);
  const LayerDef a = random_layer(rng, spec2d({7, 6}, {3, 2}, {1, 2}, "valid", true, 2, 3), "relu");
  // expects (5, 3, 4): filters differ
  const LayerDef b = random_layer(rng, spec2d({5, 3}, {2, 2}, {1, 1}, "same", true, 4, 2), "relu");
  // expects channels_first (3, 5, 3)
  const LayerDef c = random_layer(rng, spec2d({5, 3}, {2, 2}, {1, 1}, "same", false, 3, 2), "relu");
  // matches a's output
  const LayerDef d = random_layer(rng, spec2d({5, 3}, {2, 2}, {1, 1}, "same", true, 3, 2), "relu");
  CHECK_THROWS(make_network<double>({a, b}), std::invalid_argument);
  CHECK_THROWS(make_network<double>({a, c}), std::invalid_argument);
  CHECK_THROWS(make_network<float>({a, d, d}), std::invalid_argument);
  CHECK_THROWS(make_network<double>({}), std::invalid_argument);
  auto net = make_network<double>({a, d});
  CHECK(net != nullptr);
  std::vector<double> x(84), y(30);
  CHECK_THROWS(net->predict({x.data()}, 1, 0, Context{}, {y.data()}), std::invalid_argument);
  Context no_threads;
  no_threads.threads = 0;
  CHECK_THROWS(net->predict({x.data()}, 1, 1, no_threads, {y.data()}), std::invalid_argument);
}

TEST(layer_parameter_size_errors) {
  const ref::Spec s = spec2d({5, 4}, {2, 3}, {1, 1}, "valid", true, 2, 3);
  const LocalGeometry g = ref::geometry_of(s);
  const std::size_t nk = static_cast<std::size_t>(g.kernel_size());
  const std::size_t nb = static_cast<std::size_t>(g.bias_size());
  CHECK_EQ(nk, static_cast<std::size_t>(s.P() * s.KC() * s.F));
  CHECK_THROWS(LocallyConnected<double>(g, Activation::linear, std::vector<double>(nk - 1), {}),
               std::invalid_argument);
  CHECK_THROWS(LocallyConnected<double>(g, Activation::linear, std::vector<double>(nk + 1), {}),
               std::invalid_argument);
  CHECK_THROWS(LocallyConnected<float>(g, Activation::linear, std::vector<float>(), {}),
               std::invalid_argument);
  CHECK_THROWS(LocallyConnected<double>(g, Activation::linear, std::vector<double>(nk),
                                        std::vector<double>(nb + 1)),
               std::invalid_argument);
  LocallyConnected<double> ok(g, Activation::linear, std::vector<double>(nk),
                              std::vector<double>(nb));
  CHECK_EQ(ok.parameters().size(), 2u);
  CHECK_EQ(ok.parameters()[0].name, std::string("kernel"));
  CHECK_EQ(ok.parameters()[1].name, std::string("bias"));
}

// A locally connected layer that alone reads another's output takes it laid
// out with channels inner (LocallyConnected::read_channels_inner_from()),
// and so does a dense layer reading through a flatten after it: outputs,
// every gradient, an activity penalty on the first layer and predict() are
// the same to the bit as in the same network with the first layer's output
// (or the flatten's) also an output of the network, which keeps its own
// layout. Not for a softmax first layer, a reader of one channel (which
// copies nothing), channels_first, or the direct kernels (the second
// layer's small products in the last pair).
TEST(network_locally_connected_layers_agree_on_channels_inner) {
  struct Pair {
    ref::Spec first, second;
    std::string activation;
    bool agree, dense_agree;  // with the second layer, with a flatten and a dense layer
    LocalKernels kernels = LocalKernels::gemm;
  };
  const std::vector<Pair> pairs = {
      {spec2d({9, 8}, {3, 3}, {2, 2}, "valid", true, 2, 4),
       spec2d({4, 3}, {2, 2}, {1, 1}, "same", true, 4, 3), "relu", true, true},
      {spec2d({7, 6}, {3, 2}, {1, 2}, "valid", true, 1, 3),
       spec2d({5, 3}, {3, 3}, {1, 1}, "valid", true, 3, 2), "tanh", true, true},
      {spec2d({11}, {3}, {2}, "valid", true, 2, 5), spec2d({5}, {2}, {1}, "valid", true, 5, 2),
       "linear", true, true},
      {spec2d({7, 6}, {3, 2}, {1, 2}, "valid", true, 2, 3),
       spec2d({5, 3}, {2, 2}, {1, 1}, "same", true, 3, 2), "softmax", false, false},
      {spec2d({7, 6}, {3, 2}, {1, 2}, "valid", true, 2, 1),
       spec2d({5, 3}, {2, 2}, {1, 1}, "same", true, 1, 2), "relu", false, true},
      {spec2d({9}, {3}, {2}, "valid", false, 2, 4), spec2d({4}, {2}, {1}, "same", false, 4, 3),
       "relu", false, false},
      {spec2d({9, 8}, {3, 3}, {2, 2}, "valid", true, 2, 4),
       spec2d({4, 3}, {2, 2}, {1, 1}, "same", true, 4, 3), "relu", false, true,
       LocalKernels::automatic}};
  std::mt19937_64 rng(2030);
  for (std::size_t q = 0; q < pairs.size(); ++q) {
    const Pair& pair = pairs[q];
    const LayerDef first = random_layer(rng, pair.first, pair.activation);
    const LayerDef second = random_layer(rng, pair.second, "tanh");
    const Shape between = make_layer<double>(first, pair.kernels)->output_shape();
    const std::vector<double> kernel = ref::random_vector(rng, between.size() * 3),
                              bias = ref::random_vector(rng, 3);
    for (const bool dense : {false, true}) {
      // The first layer, then the second or a flatten and a dense layer;
      // with `apart`, the first layer's output (or the flatten's) is also
      // an output of the network.
      auto network = [&](bool apart) {
        Graph graph;
        std::vector<std::unique_ptr<Layer<double>>> layers;
        layers.push_back(make_layer<double>(first, pair.kernels));
        if (dense) {
          layers.push_back(std::make_unique<Flatten<double>>(between, false));
          layers.push_back(std::make_unique<Dense<double>>(Shape{{between.size()}}, 3,
                                                           Activation::tanh, kernel, bias));
        } else {
          layers.push_back(make_layer<double>(second, pair.kernels));
        }
        for (std::size_t i = 0; i < layers.size(); ++i) graph.nodes.push_back({i, {i}});
        graph.inputs = {layers.front()->input_shape()};
        graph.outputs = {layers.size()};
        if (apart) graph.outputs.push_back(layers.size() - 1);
        return std::make_unique<Network<double>>(std::move(graph), std::move(layers));
      };
      auto agreed = network(false), apart = network(true);
      const std::string what = "pair " + std::to_string(q) + (dense ? ", dense" : "");
      // Behind a flatten, only the first layer's own conditions count.
      const bool expected = dense ? pair.dense_agree : pair.agree;
      const auto& laid = static_cast<LocallyConnected<double>&>(agreed->node_layer(0));
      CHECK_MSG(laid.output_channels_inner() == expected, what);
      CHECK(!static_cast<LocallyConnected<double>&>(apart->node_layer(0)).output_channels_inner());
      if (dense) CHECK_MSG(agreed->read_through(1) && !apart->read_through(1), what);
      check_same_networks(*agreed, *apart, 0, rng, what);
    }
  }
}
