// Marks formulas that the CPU engine and the CUDA kernels share: plain inline
// functions for a C++ compiler, callable from both sides under nvcc.
#pragma once

#ifdef __CUDACC__
#define LCNN_HOST_DEVICE __host__ __device__
#else
#define LCNN_HOST_DEVICE
#endif
