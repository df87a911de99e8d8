// The memory of the arrays that predict() returns, and of the trainer's
// copies of the data (rcpp_result_memory.cpp).
#pragma once

#include <Rcpp.h>

namespace lcnn {

// A double vector of `n` values, not initialised, for a result the engine
// writes whole.
Rcpp::NumericVector result_vector(R_xlen_t n);

// Keeps what the pool holds until R's collector has run twice with no
// result made and no fit() ended in between; a block given back to the
// pool while that is not watched is unmapped. Allocates in R's heap: not
// within R's collector.
void watch_collections();

}  // namespace lcnn
