// Glue for the geometry of windowed layers and for locally connected
// weights: shapes, Keras-layout conversion and initial values. Weights
// cross into R in lcnn's layout as double vectors.
#include <Rcpp.h>

#include "engine/local_geometry.hpp"
#include "engine/locally_connected_direct.hpp"
#include "engine/random.hpp"
#include "rcpp_convert.h"

using namespace lcnn;

// [[Rcpp::export(.lc_output_dims)]]
Rcpp::NumericVector lc_output_dims(Rcpp::List geometry) {
  const LocalGeometry g = geometry_from_list(geometry);
  return Rcpp::NumericVector::create(g.rows.output, g.cols.output);
}

// Whether a locally connected layer of this geometry runs the engine's
// direct kernels (small per-position products) rather than GEMMs; tests use
// it to cover both.
// [[Rcpp::export(.lc_direct_kernels)]]
bool lc_direct_kernels(Rcpp::List geometry) {
  return direct_path_fits(geometry_from_list(geometry));
}

// Output rows and columns of a convolution, <= 0 where the input is too
// small (R reports it).
// [[Rcpp::export(.conv_output_dims)]]
Rcpp::NumericVector conv_output_dims(Rcpp::List geometry) {
  const ConvGeometry g = conv_geometry_from_list(geometry);
  return Rcpp::NumericVector::create(g.rows.output, g.cols.output);
}

// [[Rcpp::export(.lc_weight_shapes)]]
Rcpp::List lc_weight_shapes(Rcpp::List geometry, int implementation) {
  const LocalGeometry g = geometry_from_list(geometry);
  g.validate();
  return Rcpp::List::create(Rcpp::_["kernel"] = dims_of(g.keras_kernel_shape(implementation)),
                            Rcpp::_["bias"] = dims_of(g.keras_bias_shape()),
                            Rcpp::_["kernel_size"] = static_cast<double>(g.kernel_size()),
                            Rcpp::_["bias_size"] = static_cast<double>(g.bias_size()));
}

// [[Rcpp::export(.lc_kernel_from_keras)]]
Rcpp::NumericVector lc_kernel_from_keras(Rcpp::List geometry, int implementation,
                                         Rcpp::NumericVector keras, std::string dtype) {
  const LocalGeometry g = geometry_from_list(geometry);
  Rcpp::NumericVector lcnn(g.kernel_size());
  kernel_from_keras(g, implementation, keras.begin(), lcnn.begin());
  round_to_dtype(lcnn, dtype);
  return lcnn;
}

// [[Rcpp::export(.lc_kernel_to_keras)]]
Rcpp::NumericVector lc_kernel_to_keras(Rcpp::List geometry, int implementation,
                                       Rcpp::NumericVector lcnn) {
  const LocalGeometry g = geometry_from_list(geometry);
  const Shape shape = g.keras_kernel_shape(implementation);
  Rcpp::NumericVector keras(shape.size());
  kernel_to_keras(g, implementation, lcnn.begin(), keras.begin());
  keras.attr("dim") = dims_of(shape);
  return keras;
}

// [[Rcpp::export(.lc_bias_from_keras)]]
Rcpp::NumericVector lc_bias_from_keras(Rcpp::List geometry, Rcpp::NumericVector keras,
                                       std::string dtype) {
  const LocalGeometry g = geometry_from_list(geometry);
  Rcpp::NumericVector lcnn(g.bias_size());
  bias_from_keras(g, keras.begin(), lcnn.begin());
  round_to_dtype(lcnn, dtype);
  return lcnn;
}

// [[Rcpp::export(.lc_bias_to_keras)]]
Rcpp::NumericVector lc_bias_to_keras(Rcpp::List geometry, Rcpp::NumericVector lcnn) {
  const LocalGeometry g = geometry_from_list(geometry);
  const Shape shape = g.keras_bias_shape();
  Rcpp::NumericVector keras(shape.size());
  bias_to_keras(g, lcnn.begin(), keras.begin());
  keras.attr("dim") = dims_of(shape);
  return keras;
}

// Values drawn by the engine on `threads` threads, rounded to dtype; with a
// geometry, they form an lcnn-layout kernel whose unconnected taps are then
// set to zero.
// [[Rcpp::export(.random_values)]]
Rcpp::NumericVector random_values(double n, std::string distribution, double a, double b,
                                  Rcpp::NumericVector seed, std::string dtype, int threads,
                                  Rcpp::Nullable<Rcpp::List> geometry = R_NilValue) {
  Rcpp::NumericVector values(Rcpp::no_init(static_cast<R_xlen_t>(n)));
  const Distribution d = parse_distribution(distribution);
  const auto fill = dtype == "float32" ? &fill_random<double, float> : &fill_random<double>;
  fill(values.begin(), static_cast<index_t>(n), d, a, b, seed_from_r(seed), threads);
  if (geometry.isNotNull()) {
    const LocalGeometry g = geometry_from_list(Rcpp::List(geometry.get()));
    if (g.kernel_size() != static_cast<index_t>(n)) Rcpp::stop("kernel size mismatch");
    zero_unconnected(g, values.begin());
  }
  return values;
}

// [[Rcpp::export(.round_to_dtype)]]
Rcpp::NumericVector round_values_to_dtype(Rcpp::NumericVector values, std::string dtype) {
  Rcpp::NumericVector out = Rcpp::clone(values);
  round_to_dtype(out, dtype);
  return out;
}
