// The table of product, update, loss, relu, scan and copy kernels that
// gemm_kernels.cpp defines once per instruction set, each in a namespace
// of its own (see that file).
#pragma once

#include "gemm.hpp"

namespace lcnn {

template <typename T>
using GemmKernel = void (*)(Op, Op, index_t, index_t, index_t, const T*, index_t, const T*,
                            index_t, T*, index_t, bool);

template <typename T>
using ColumnKernel = void (*)(index_t, index_t, index_t, const T* const*, PointerTo, const T*,
                              index_t, index_t, T* const*, const T*, bool, bool, Operand);

template <typename T>
using UpdateKernel = void (*)(const UpdateRule<T>&, T*, const T*, T*, int, index_t, index_t);

template <typename T, typename X>
using LossKernel = double (*)(const LossSpec&, bool, const T*, index_t, index_t, const X*,
                              const T*, index_t, index_t, T*);

// Whether any of `count` values is not finite within [-bound, bound].
using NotFiniteKernel = bool (*)(const double*, index_t, double);

// out[i] = value[i] where test[i] > 0, else +0, for i < count.
template <typename T>
using PositiveKernel = void (*)(const T*, const T*, T*, index_t);

// sample_major_rows() (gemm.hpp).
template <typename T>
using SampleMajorKernel = bool (*)(const double*, index_t, index_t, T*, index_t);

struct GemmKernels {
  const char* name;
  GemmKernel<float> single;
  GemmKernel<double> double_precision;
  ColumnKernel<float> columns_single;
  ColumnKernel<double> columns_double;
  UpdateKernel<float> update_single;
  UpdateKernel<double> update_double;
  LossKernel<float, float> loss_single;
  LossKernel<float, double> loss_single_from_double;
  LossKernel<double, double> loss_double;
  NotFiniteKernel not_finite;
  PositiveKernel<float> positive_single;
  PositiveKernel<double> positive_double;
  SampleMajorKernel<float> sample_major_single;
  SampleMajorKernel<double> sample_major_double;
};

namespace kernels_baseline {
GemmKernels table();
}
#ifdef LCNN_HAVE_AVX2
namespace kernels_avx2 {
GemmKernels table();
}
#endif
#ifdef LCNN_HAVE_AVX512
namespace kernels_avx512 {
GemmKernels table();
}
#endif

}  // namespace lcnn
