// Runs a test body once per CPU kernel set this build and CPU can run
// (gemm.hpp), with that set in use, and puts back the set that was in use.
#pragma once

#include <string>

#include "gemm.hpp"

template <typename Body>
void for_each_kernel_set(Body body) {
  const std::string in_use = lcnn::cpu_kernels();
  for (const std::string& kernels : lcnn::available_cpu_kernels()) {
    lcnn::use_cpu_kernels(kernels);
    body(kernels);
  }
  lcnn::use_cpu_kernels(in_use);
}
