// The product kernels, compiled once per instruction set: the build defines
// LCNN_KERNELS to baseline, avx2 or avx512 and adds that set's compiler
// flags. Eigen is renamed per build, so the template code each build
// instantiates stays in a namespace of its own and the linker can never
// swap an AVX-512 instantiation into the baseline path (tests/cpp checks the
// objects for that).
#ifndef LCNN_KERNELS
#error "LCNN_KERNELS must name the instruction set this file is built for"
#endif

#define LCNN_PASTE_(a, b) a##b
#define LCNN_PASTE(a, b) LCNN_PASTE_(a, b)
#define LCNN_STRING_(a) #a
#define LCNN_STRING(a) LCNN_STRING_(a)

// Eigen 3.3 uses AVX-512 only when asked, and its heap buffers then need
// 64-byte alignment.
#if defined(__AVX512F__)
#define EIGEN_ENABLE_AVX512
#define EIGEN_MAX_ALIGN_BYTES 64
#endif
#define Eigen LCNN_PASTE(lcnn_eigen_, LCNN_KERNELS)
#include <Eigen/Core>

#include "gemm_kernels.hpp"

namespace lcnn {
namespace LCNN_PASTE(kernels_, LCNN_KERNELS) {
namespace {

template <typename T>
using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
template <typename T>
using ConstView = Eigen::Map<const Matrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <typename T>
using View = Eigen::Map<Matrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

template <typename T, typename Left, typename Right>
void multiply(const Left& a, const Right& b, T* c, index_t m, index_t n, index_t ldc,
              bool accumulate) {
  View<T> result(c, m, n, Eigen::OuterStride<>(ldc));
  if (accumulate) {
    result.noalias() += a * b;
  } else {
    result.noalias() = a * b;
  }
}

template <typename T>
void product(Op op_a, Op op_b, index_t m, index_t n, index_t k, const T* a, index_t lda,
             const T* b, index_t ldb, T* c, index_t ldc, bool accumulate) {
  const bool ta = op_a == Op::transpose, tb = op_b == Op::transpose;
  ConstView<T> A(a, ta ? k : m, ta ? m : k, Eigen::OuterStride<>(lda));
  ConstView<T> B(b, tb ? n : k, tb ? k : n, Eigen::OuterStride<>(ldb));
  if (ta && tb) {
    multiply<T>(A.transpose(), B.transpose(), c, m, n, ldc, accumulate);
  } else if (ta) {
    multiply<T>(A.transpose(), B, c, m, n, ldc, accumulate);
  } else if (tb) {
    multiply<T>(A, B.transpose(), c, m, n, ldc, accumulate);
  } else {
    multiply<T>(A, B, c, m, n, ldc, accumulate);
  }
}

}  // namespace

GemmKernels table() {
  return {LCNN_STRING(LCNN_KERNELS), &product<float>, &product<double>};
}

}  // namespace LCNN_PASTE(kernels_, LCNN_KERNELS)
}  // namespace lcnn
