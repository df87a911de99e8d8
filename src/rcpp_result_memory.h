// The memory of the arrays that predict() returns, of the trainer's
// parameters and optimizer state copied into R, and of the trainer's
// copies of the data (rcpp_result_memory.cpp).
#pragma once

#include <Rcpp.h>

#include "engine/buffer.hpp"

namespace lcnn {

// A double vector of `n` values, not initialised, for a result the engine
// writes whole; from a large page on in a mapping of its own, made on
// `pages` where the pool has none of its size.
Rcpp::NumericVector result_vector(R_xlen_t n, PageSize pages);

// The same for `n` bytes.
Rcpp::RawVector result_bytes(R_xlen_t n, PageSize pages);

// Keeps what the pool holds until R's collector has run twice with no
// result made and no fit() ended in between; a block given back to the
// pool while that is not watched is unmapped. Allocates in R's heap: not
// within R's collector.
void watch_collections();

}  // namespace lcnn
