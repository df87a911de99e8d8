// Glue for engine networks: built from the layer specs R keeps, held behind
// an external pointer, run on whole R arrays.
#include <Rcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "engine/activation_layer.hpp"
#include "engine/convolution.hpp"
#include "engine/dense.hpp"
#include "engine/dropout.hpp"
#include "engine/flatten.hpp"
#include "engine/locally_connected.hpp"
#include "engine/network.hpp"
#include "rcpp_convert.h"

using namespace lcnn;

namespace {

template <typename T>
std::vector<T> values_of(const Rcpp::NumericVector& v) {
  return std::vector<T>(v.begin(), v.end());
}

Shape shape_of(const Rcpp::IntegerVector& dims) {
  Shape s;
  for (int d : dims) s.dims.push_back(d);
  return s;
}

// One engine layer from the spec that R's layer_engine_spec() methods build.
template <typename T>
std::unique_ptr<Layer<T>> make_layer(const Rcpp::List& spec) {
  const std::string type = Rcpp::as<std::string>(spec["type"]);
  if (type == "locally_connected") {
    return std::make_unique<LocallyConnected<T>>(
        geometry_from_list(spec["geometry"]),
        parse_activation(Rcpp::as<std::string>(spec["activation"])),
        values_of<T>(spec["kernel"]), values_of<T>(spec["bias"]));
  }
  if (type == "conv") {
    return std::make_unique<Convolution<T>>(
        conv_geometry_from_list(spec["geometry"]),
        parse_activation(Rcpp::as<std::string>(spec["activation"])),
        values_of<T>(spec["kernel"]), values_of<T>(spec["bias"]));
  }
  const Shape input = shape_of(spec["input_shape"]);
  if (type == "dense") {
    return std::make_unique<Dense<T>>(
        input, Rcpp::as<index_t>(spec["units"]),
        parse_activation(Rcpp::as<std::string>(spec["activation"])),
        values_of<T>(spec["kernel"]), values_of<T>(spec["bias"]));
  }
  if (type == "flatten") {
    return std::make_unique<Flatten<T>>(input, Rcpp::as<bool>(spec["channels_first"]));
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
  throw std::invalid_argument("unknown layer type '" + type + "'");
}

}  // namespace

namespace lcnn {

template <typename T>
std::unique_ptr<Network<T>> make_network(const Rcpp::List& layers) {
  std::vector<std::unique_ptr<Layer<T>>> built;
  for (R_xlen_t i = 0; i < layers.size(); ++i) built.push_back(make_layer<T>(layers[i]));
  return std::make_unique<Network<T>>(std::move(built));
}

template std::unique_ptr<Network<float>> make_network<float>(const Rcpp::List&);
template std::unique_ptr<Network<double>> make_network<double>(const Rcpp::List&);

}  // namespace lcnn

// [[Rcpp::export(.network_create)]]
SEXP network_create(Rcpp::List layers, std::string dtype) {
  std::unique_ptr<NetworkBase> network;
  if (dtype == "float64") {
    network = make_network<double>(layers);
  } else {
    network = make_network<float>(layers);
  }
  return Rcpp::XPtr<NetworkBase>(network.release(), true);
}

// [[Rcpp::export(.network_predict)]]
Rcpp::NumericVector network_predict(SEXP network, Rcpp::NumericVector x, double batch_size,
                                    int threads) {
  Rcpp::XPtr<NetworkBase> net(network);
  if (net.get() == nullptr) Rcpp::stop("the engine network is no longer valid");
  return predict_array(*net, x, batch_size, threads);
}

Rcpp::NumericVector lcnn::predict_array(NetworkBase& net, const Rcpp::NumericVector& x,
                                        double batch_size, int threads) {
  const Shape in = net.input_shape(), out = net.output_shape();
  const index_t n = in.size() == 0 ? 0 : static_cast<index_t>(x.size()) / in.size();
  if (n * in.size() != static_cast<index_t>(x.size())) {
    Rcpp::stop("input has %d values, not a whole number of samples of %s", x.size(),
               in.to_string());
  }
  Rcpp::NumericVector y(static_cast<R_xlen_t>(n * out.size()));
  Context ctx;
  ctx.threads = threads;
  net.predict(x.begin(), n, static_cast<index_t>(batch_size), ctx, y.begin());
  y.attr("dim") = dims_of(out.with_batch(n));
  return y;
}

// [[Rcpp::export(.network_is_null)]]
bool network_is_null(SEXP network) { return R_ExternalPtrAddr(network) == nullptr; }
