// Marks formulas that the CPU engine and the CUDA kernels share: plain inline
// functions for a C++ compiler, callable from both sides under nvcc.
#pragma once

#ifdef __CUDACC__
#define LCNN_HOST_DEVICE __host__ __device__
#else
#define LCNN_HOST_DEVICE
#endif

// For a shared formula that must be inlined into its callers' loops: GCC
// may otherwise call a large one (the optimizer's update_value()) once per
// vector of values, passing the vectors through memory.
#if defined(__CUDACC__)
#define LCNN_ALWAYS_INLINE __forceinline__
#elif defined(__GNUC__)
#define LCNN_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define LCNN_ALWAYS_INLINE inline
#endif
