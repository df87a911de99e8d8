// Glue for the choice of CPU kernels behind the engine's matrix products.
#include <Rcpp.h>

#include "engine/gemm.hpp"

// [[Rcpp::export(.cpu_kernels)]]
Rcpp::List cpu_kernels_info() {
  return Rcpp::List::create(Rcpp::_["in_use"] = lcnn::cpu_kernels(),
                            Rcpp::_["available"] = lcnn::available_cpu_kernels());
}

// [[Rcpp::export(.use_cpu_kernels)]]
void use_cpu_kernels(std::string name) { lcnn::use_cpu_kernels(name); }
