// Glue for engine networks: built from the layer specs R keeps, held behind
// an external pointer, run on whole R arrays.
#include <Rcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "engine/activation_layer.hpp"
#include "engine/batch_norm.hpp"
#include "engine/convert.hpp"
#include "engine/convolution.hpp"
#include "engine/dense.hpp"
#include "engine/dropout.hpp"
#include "engine/flatten.hpp"
#include "engine/gemm.hpp"
#include "engine/locally_connected.hpp"
#include "engine/merge.hpp"
#include "engine/network.hpp"
#include "engine/parallel.hpp"
#include "engine/pooling.hpp"
#include "engine/reshaping.hpp"
#include "rcpp_convert.h"
#include "rcpp_result_memory.h"

using namespace lcnn;

namespace {

// A layer's parameters as T, converted on `threads` threads (a large
// locally connected kernel holds hundreds of millions), each block in the
// engine's float mode so that the values do not depend on which thread
// converts them.
template <typename T>
std::vector<T> values_of(const Rcpp::NumericVector& v, int threads) {
  constexpr index_t kBlock = 65536;
  std::vector<T> values(static_cast<std::size_t>(v.size()));
  for_each_block(static_cast<index_t>(v.size()), kBlock, threads, [&](index_t first, index_t n) {
    const FlushDenormals flush;
    convert_values(v.begin() + first, values.data() + first, n);
  });
  return values;
}

Shape shape_of(const Rcpp::IntegerVector& dims) {
  Shape s;
  for (int d : dims) s.dims.push_back(d);
  return s;
}

std::vector<index_t> amounts_of(const Rcpp::IntegerVector& values) {
  return std::vector<index_t>(values.begin(), values.end());
}

// One engine layer from the spec that R's layer_engine_spec() methods build.
template <typename T>
std::unique_ptr<Layer<T>> make_layer(const Rcpp::List& spec, int threads) {
  const std::string type = Rcpp::as<std::string>(spec["type"]);
  if (type == "locally_connected") {
    return std::make_unique<LocallyConnected<T>>(
        geometry_from_list(spec["geometry"]),
        parse_activation(Rcpp::as<std::string>(spec["activation"])),
        values_of<T>(spec["kernel"], threads), values_of<T>(spec["bias"], threads));
  }
  if (type == "merge") {
    std::vector<Shape> inputs;
    for (const Rcpp::IntegerVector dims : Rcpp::List(spec["input_shapes"])) {
      inputs.push_back(shape_of(dims));
    }
    return std::make_unique<Merge<T>>(parse_merge(Rcpp::as<std::string>(spec["merge"])),
                                      std::move(inputs), Rcpp::as<std::size_t>(spec["axis"]));
  }
  if (type == "pooling") {
    return std::make_unique<Pooling<T>>(geometry_from_list(spec["geometry"]),
                                        parse_pool_mode(Rcpp::as<std::string>(spec["mode"])),
                                        shape_of(spec["output_shape"]),
                                        parse_max_ties(Rcpp::as<std::string>(spec["max_ties"])));
  }
  if (type == "conv") {
    return std::make_unique<Convolution<T>>(
        conv_geometry_from_list(spec["geometry"]),
        parse_activation(Rcpp::as<std::string>(spec["activation"])),
        values_of<T>(spec["kernel"], threads), values_of<T>(spec["bias"], threads));
  }
  const Shape input = shape_of(spec["input_shape"]);
  if (type == "dense") {
    return std::make_unique<Dense<T>>(
        input, Rcpp::as<index_t>(spec["units"]),
        parse_activation(Rcpp::as<std::string>(spec["activation"])),
        values_of<T>(spec["kernel"], threads), values_of<T>(spec["bias"], threads));
  }
  if (type == "flatten") {
    return std::make_unique<Flatten<T>>(input, Rcpp::as<bool>(spec["channels_first"]));
  }
  if (type == "reshape") {
    return std::make_unique<Reshape<T>>(input, shape_of(spec["target_shape"]));
  }
  if (type == "permute") {
    // R gives Keras's 1-based axes.
    std::vector<std::size_t> dims;
    for (int d : Rcpp::IntegerVector(spec["dims"])) dims.push_back(static_cast<std::size_t>(d - 1));
    return std::make_unique<Permute<T>>(input, dims);
  }
  if (type == "pad_crop") {
    return std::make_unique<PadCrop<T>>(input, amounts_of(spec["before"]),
                                        amounts_of(spec["after"]));
  }
  if (type == "activation") {
    return std::make_unique<ActivationLayer<T>>(
        input, parse_activation(Rcpp::as<std::string>(spec["activation"])));
  }
  if (type == "dropout") {
    const Rcpp::LogicalVector shared = spec["shared"];
    return std::make_unique<Dropout<T>>(input, Rcpp::as<double>(spec["rate"]),
                                        std::vector<bool>(shared.begin(), shared.end()),
                                        static_cast<std::uint64_t>(Rcpp::as<double>(spec["salt"])));
  }
  if (type == "batch_normalization") {
    BatchNormOptions options;
    options.axis = Rcpp::as<index_t>(spec["axis"]);
    options.momentum = Rcpp::as<double>(spec["momentum"]);
    options.epsilon = Rcpp::as<double>(spec["epsilon"]);
    options.frozen = Rcpp::as<bool>(spec["frozen"]);
    options.unbiased_moving_variance = Rcpp::as<bool>(spec["unbiased_moving_variance"]);
    return std::make_unique<BatchNorm<T>>(input, options, values_of<T>(spec["gamma"], threads),
                                          values_of<T>(spec["beta"], threads),
                                          values_of<T>(spec["moving_mean"], threads),
                                          values_of<T>(spec["moving_variance"], threads));
  }
  throw std::invalid_argument("unknown layer type '" + type + "'");
}

}  // namespace

namespace lcnn {

// network: list(inputs = list of per-sample dims, nodes = list of
// list(layer, inputs, spec), outputs), with 0-based layer and value ids.
template <typename T>
std::unique_ptr<Network<T>> make_network(const Rcpp::List& network, int threads) {
  Graph graph;
  for (const Rcpp::IntegerVector dims : Rcpp::List(network["inputs"])) {
    graph.inputs.push_back(shape_of(dims));
  }
  std::vector<std::unique_ptr<Layer<T>>> layers;
  for (const Rcpp::List node : Rcpp::List(network["nodes"])) {
    Node n;
    n.layer = Rcpp::as<std::size_t>(node["layer"]);
    for (int v : Rcpp::IntegerVector(node["inputs"])) n.inputs.push_back(v);
    graph.nodes.push_back(std::move(n));
    layers.push_back(make_layer<T>(node["spec"], threads));
  }
  for (int v : Rcpp::IntegerVector(network["outputs"])) graph.outputs.push_back(v);
  return std::make_unique<Network<T>>(std::move(graph), std::move(layers));
}

template std::unique_ptr<Network<float>> make_network<float>(const Rcpp::List&, int);
template std::unique_ptr<Network<double>> make_network<double>(const Rcpp::List&, int);

}  // namespace lcnn

// [[Rcpp::export(.network_create)]]
SEXP network_create(Rcpp::List layers, std::string dtype, int threads) {
  std::unique_ptr<NetworkBase> network;
  if (dtype == "float64") {
    network = make_network<double>(layers, threads);
  } else {
    network = make_network<float>(layers, threads);
  }
  return Rcpp::XPtr<NetworkBase>(network.release(), true);
}

// [[Rcpp::export(.network_predict)]]
Rcpp::List network_predict(SEXP network, Rcpp::List xs, double batch_size, int threads) {
  Rcpp::XPtr<NetworkBase> net(network);
  if (net.get() == nullptr) Rcpp::stop("the engine network is no longer valid");
  return predict_arrays(*net, xs, batch_size, threads);
}

Rcpp::List lcnn::predict_arrays(NetworkBase& net, const Rcpp::List& xs, double batch_size,
                                int threads) {
  const std::vector<Shape> in = net.input_shapes(), out = net.output_shapes();
  if (static_cast<std::size_t>(xs.size()) != in.size()) {
    Rcpp::stop("the network takes %d inputs, not %d", in.size(), xs.size());
  }
  std::vector<const double*> x_data;
  index_t n = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const index_t size = Rf_xlength(xs[i]);
    const index_t samples = in[i].size() == 0 ? 0 : size / in[i].size();
    if (samples * in[i].size() != size || (i > 0 && samples != n)) {
      Rcpp::stop("input %d has %d values, not %d samples of %s", i + 1, size,
                 i > 0 ? n : samples, in[i].to_string());
    }
    n = samples;
    x_data.push_back(double_values(xs[i]));
  }
  Rcpp::List ys(out.size());
  std::vector<double*> y_data;
  for (std::size_t o = 0; o < out.size(); ++o) {
    Rcpp::NumericVector y = result_vector(static_cast<R_xlen_t>(n * out[o].size()), PageSize::large);
    y.attr("dim") = dims_of(out[o].with_batch(n));
    y_data.push_back(y.begin());
    ys[o] = y;
  }
  Context ctx;
  ctx.threads = threads;
  net.predict(x_data, n, static_cast<index_t>(batch_size), ctx, y_data);
  return ys;
}

namespace {

// The seconds of each of `reps` forward passes of `net` over one batch of
// `batch` samples that the engine already holds in T (after a pass to warm
// up), in predict()'s inference mode: predict()'s work less the conversions
// from and to R's double arrays. The inputs' values come from a fixed
// pattern in [-1, 1).
template <typename T>
std::vector<double> forward_seconds(Network<T>& net, index_t batch, int reps, int threads) {
  std::vector<Tensor<T>> inputs(net.input_shapes().size());
  std::vector<const Tensor<T>*> pointers;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    inputs[i].resize(net.input_shapes()[i].with_batch(batch));
    for (std::size_t v = 0; v < inputs[i].data.size(); ++v) {
      inputs[i].data[v] = static_cast<T>(static_cast<double>((v * 7919) % 2000) / 1000 - 1);
    }
    pointers.push_back(&inputs[i]);
  }
  Context ctx;
  ctx.threads = threads;
  const FlushDenormals flush;
  std::vector<double> seconds;
  for (int r = -1; r < reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
    net.forward(pointers, ctx);
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    if (r >= 0) seconds.push_back(took.count());
  }
  return seconds;
}

}  // namespace

// For bench/run.R: forward_seconds() of an engine network of either type.
// [[Rcpp::export(.network_forward_seconds)]]
std::vector<double> network_forward_seconds(SEXP network, int batch, int reps, int threads) {
  Rcpp::XPtr<NetworkBase> net(network);
  if (net.get() == nullptr) Rcpp::stop("the engine network is no longer valid");
  if (batch < 1 || reps < 1 || threads < 1) {
    Rcpp::stop("batch, reps and threads must be at least 1");
  }
  if (auto* single = dynamic_cast<Network<float>*>(net.get())) {
    return forward_seconds(*single, batch, reps, threads);
  }
  return forward_seconds(dynamic_cast<Network<double>&>(*net), batch, reps, threads);
}

// [[Rcpp::export(.network_is_null)]]
bool network_is_null(SEXP network) { return R_ExternalPtrAddr(network) == nullptr; }

// [[Rcpp::export(.engine_available_cores)]]
int engine_available_cores() { return available_cores(); }

// Whether a double array holds a value that is not finite within
// [-bound, bound] (fit()'s check of its data, any_not_finite()).
// [[Rcpp::export(.engine_any_not_finite)]]
bool engine_any_not_finite(SEXP x, double bound, int threads) {
  return any_not_finite(double_values(x), Rf_xlength(x), bound, threads);
}

// [[Rcpp::export(.engine_in_forked_child)]]
bool engine_in_forked_child() { return in_forked_child(); }

// The engine's threads run code of this library: end them before R unloads it.
extern "C" void R_unload_lcnn(DllInfo*) { stop_threads(); }
