#include "rcpp_convert.h"

#include <limits>

namespace lcnn {

namespace {

// The fields every windowed layer's list has besides its axes.
void read_window_fields(const Rcpp::List& spec, WindowGeometry& g) {
  g.channels = Rcpp::as<index_t>(spec["channels"]);
  g.filters = Rcpp::as<index_t>(spec["filters"]);
  g.format = parse_data_format(Rcpp::as<std::string>(spec["data_format"]));
  g.one_d = Rcpp::as<bool>(spec["one_d"]);
}

}  // namespace

LocalGeometry geometry_from_list(const Rcpp::List& spec) {
  const Padding padding = parse_padding(Rcpp::as<std::string>(spec["padding"]));
  // Layers saved by lcnn 0.1.0 (with saveRDS()) have no "same_padding": they
  // are locally connected.
  const SamePadding same =
      spec.containsElementNamed("same_padding")
          ? parse_same_padding(Rcpp::as<std::string>(spec["same_padding"]))
          : SamePadding::locally_connected;
  const Rcpp::NumericVector rows = spec["rows"], cols = spec["cols"];
  LocalGeometry g;
  g.rows = AxisWindow::make(rows[0], rows[1], rows[2], padding, same);
  g.cols = AxisWindow::make(cols[0], cols[1], cols[2], padding, same);
  read_window_fields(spec, g);
  return g;
}

ConvGeometry conv_geometry_from_list(const Rcpp::List& spec) {
  const Padding padding = parse_padding(Rcpp::as<std::string>(spec["padding"]));
  const Rcpp::NumericVector rows = spec["rows"], cols = spec["cols"], dilation = spec["dilation"];
  ConvGeometry g;
  g.rows = AxisWindow::convolution(rows[0], rows[1], rows[2], dilation[0], padding);
  g.cols = AxisWindow::convolution(cols[0], cols[1], cols[2], dilation[1], padding);
  read_window_fields(spec, g);
  g.groups = Rcpp::as<index_t>(spec["groups"]);
  return g;
}

std::uint64_t seed_from_r(const Rcpp::NumericVector& seed) {
  if (seed.size() != 2) Rcpp::stop("seed must hold two numbers");
  return (static_cast<std::uint64_t>(seed[0]) << 32) ^ static_cast<std::uint64_t>(seed[1]);
}

void round_to_dtype(Rcpp::NumericVector& values, const std::string& dtype) {
  if (dtype != "float32") return;
  for (double& v : values) v = static_cast<double>(static_cast<float>(v));
}

Rcpp::IntegerVector dims_of(const Shape& shape) {
  Rcpp::IntegerVector dims(shape.rank());
  for (std::size_t i = 0; i < shape.rank(); ++i) {
    // R checks sizes before they reach the engine; a cast past R's integers
    // would give a wrong dimension.
    if (shape[i] > std::numeric_limits<int>::max()) {
      Rcpp::stop("dimension %d of %s is beyond R's integers", i + 1, shape.to_string());
    }
    dims[i] = static_cast<int>(shape[i]);
  }
  return dims;
}

const double* double_values(SEXP x) {
  if (TYPEOF(x) != REALSXP) Rcpp::stop("engine data must be double arrays");
  return REAL_RO(x);
}

}  // namespace lcnn
