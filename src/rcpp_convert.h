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

// Geometry from the list that R/layer-locally-connected.R builds:
// rows and cols as c(input, kernel, stride), padding, channels, filters,
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

// An engine network of float type T from R's list of layer specs
// (src/rcpp_network.cpp).
template <typename T>
std::unique_ptr<Network<T>> make_network(const Rcpp::List& layers);

// Runs `net` on an R array of samples, returning the outputs as an R array.
Rcpp::NumericVector predict_array(NetworkBase& net, const Rcpp::NumericVector& x,
                                  double batch_size, int threads);

}  // namespace lcnn
