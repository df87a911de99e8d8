// Conversions shared by the Rcpp glue files: R lists to engine structs.
#pragma once

#include <Rcpp.h>

#include <cstdint>
#include <memory>
#include <string>

#include "engine/convolution.hpp"
#include "engine/local_geometry.hpp"
#include "engine/network.hpp"

namespace lcnn {

// Geometry from the list that window_geometry() in
// R/layer-locally-connected.R builds: rows and cols as
// c(input, kernel, stride), padding, same_padding, channels, filters,
// data_format, one_d.
LocalGeometry geometry_from_list(const Rcpp::List& spec);

// Geometry from the list that R/layer-conv.R builds: the same fields with
// TensorFlow's convolution windows, plus dilation (rows, cols) and groups.
ConvGeometry conv_geometry_from_list(const Rcpp::List& spec);

// Engine seed from the two 31-bit integers R draws with its own RNG.
std::uint64_t seed_from_r(const Rcpp::NumericVector& seed);

// Rounds values to float32 when dtype is "float32", so that R's copy of the
// weights is exactly what a float32 engine computes with.
void round_to_dtype(Rcpp::NumericVector& values, const std::string& dtype);

Rcpp::IntegerVector dims_of(const Shape& shape);

// The values of a double vector that R keeps alive (an element of a list
// argument), read-only: asking for writable data (REAL()) makes R duplicate
// an ALTREP wrapper whose values another object shares, which `dim<-` on
// such a vector gives (a whole copy of the data on every fit()). Stops for
// any other type, where a converted copy would not outlive the call.
const double* double_values(SEXP x);

// An engine network of float type T from the graph R's network_spec()
// builds (src/rcpp_network.cpp), its parameters converted on `threads`
// threads.
template <typename T>
std::unique_ptr<Network<T>> make_network(const Rcpp::List& network, int threads);

// Runs `net` on R arrays of samples, one per input, returning one R array
// per output.
Rcpp::List predict_arrays(NetworkBase& net, const Rcpp::List& xs, double batch_size,
                          int threads);

}  // namespace lcnn
