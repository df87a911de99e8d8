// The memory of the arrays that predict() returns (rcpp_result_memory.cpp).
#pragma once

#include <Rcpp.h>

namespace lcnn {

// A double vector of `n` values, not initialised, for a result the engine
// writes whole.
Rcpp::NumericVector result_vector(R_xlen_t n);

}  // namespace lcnn
