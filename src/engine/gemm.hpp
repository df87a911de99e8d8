// Matrix products for the engine: C = op(A) op(B), or C += op(A) op(B), on
// column-major matrices given by pointer and leading dimension (as in BLAS).
//
// The products, and the optimizer's update, the elementwise losses, relu,
// the scan for values that are not finite and the sample-major copy below, run in
// kernels compiled once per instruction set (gemm_kernels.cpp, built for
// the baseline the compiler targets and, where the compiler can, for
// AVX2+FMA and AVX-512) and chosen at run time for the CPU at hand: a
// package built with R's portable flags still multiplies with the widest
// vectors the machine has.
#pragma once

#include <string>
#include <vector>

#include "loss.hpp"
#include "optimizer_update.hpp"
#include "tensor.hpp"

namespace lcnn {

enum class Op { none, transpose };

template <typename T>
void gemm(Op op_a, Op op_b, index_t m, index_t n, index_t k, const T* a, index_t lda,
          const T* b, index_t ldb, T* c, index_t ldc, bool accumulate);

// How a matrix is given by pointers: one per column (each to that column's
// contiguous values) or one per row.
enum class PointerTo { columns, rows };

// Where a column product's right-hand operand s comes from: `streamed`
// from memory, once (a locally connected layer's weights), and the product
// asks for each column tile's lines one tile ahead; or `cached`, staying in
// the caches from call to call (a dense layer's kernel of under 1 MiB
// between training steps), where those requests only take issue slots and
// fill buffers (bench/NOTES.md).
enum class Operand { streamed, cached };

// A product whose operands are addressed column by column (or row by row),
// for locally connected and dense layers: for each j < n with c[j] not null,
//   c[j][0..m) = base_j + sum over l < k of a(0..m, l) * s[l * s_l + j * s_j]
// where base_j is c[j] itself when `accumulate`, else init[j] (zero when
// init is null); with `rectify`, relu of that (x where x > 0, else +0, as
// activation_value() gives), applied as each value is stored for the last
// time instead of in a pass of its own over the result. `a` (m x k) comes
// as k column pointers (a(i, l) = a[l][i]) or m row pointers (a(i, l) =
// a[i][l]); a null pointer is a zero column or row. A position's patch
// columns can thus be read straight from the input tensor (null for
// padding), its input gradient added straight into the input's columns,
// the transpose of its patch (one row per patch column) multiplied without
// the caller copying it (the product transposes it in registers, block by
// block), and the right-hand operand (the position's weights or output
// gradient) streams through unpacked, each value read once. The vectors
// run across rows; for at most a quarter of a vector of rows, with `a` by
// columns and s_l = 1 (a forward pass of one to four samples), each result
// is a dot product along the sum instead. `s_from` tells where s comes
// from (Operand).
template <typename T>
void column_product(index_t m, index_t n, index_t k, const T* const* a, PointerTo a_points_to,
                    const T* s, index_t s_l, index_t s_j, T* const* c, const T* init,
                    bool accumulate, bool rectify = false, Operand s_from = Operand::streamed);

// One optimizer step of `count` parameters: values[i] from gradient[i] and
// the parameter's `slot_count` slots (at most 3), slots[i],
// slots[i + slot_stride], ... (the rules of update_parameter(),
// optimizer_update.hpp). In the kernel sets too, so that the square roots
// and divisions of the adaptive optimizers run on the CPU's widest
// vectors. A parameter's update does not depend on which others are
// updated with it.
template <typename T>
void update_parameters(const UpdateRule<T>& rule, T* values, const T* gradient, T* slots,
                       int slot_count, index_t slot_stride, index_t count);

// Values [first, first + count) of an elementwise loss (mse, mae, huber,
// binary crossentropy; elementwise_loss.hpp) of the `size` values of
// `input`, `batch` samples innermost, against `target`: their weighted sum
// of terms, and with grad not null their gradient (scaled by 1 / size).
// Throws std::invalid_argument for a categorical loss.
template <typename T, typename X>
double elementwise_loss(const LossSpec& loss, bool logits, const T* input, index_t batch,
                        index_t size, const X* target, const T* weights, index_t first,
                        index_t count, T* grad);

// Whether any of values[0, count) is not a finite value within
// [-bound, bound]: NaN (R's NA among them), infinite, or beyond the
// largest value of the type the data go into (float32's, which a
// conversion would make infinite), scanned in blocks on up to `threads`
// threads. Also in the kernel sets: R's doubles
// stream from memory, and on the benchmark machine 16-byte loads fetched
// them at less than half the speed of 64-byte ones. R's anyNA(), one value
// at a time, took 57 ms for Fashion-MNIST's 47 million training values,
// which fit() checks on every call (bench/NOTES.md).
bool any_not_finite(const double* values, index_t count, double bound, int threads);

// out[i] = value[i] where test[i] > 0, else +0 (a NaN test included), for
// i < count; out may be test or value. relu of v is v kept where v is
// positive, and its gradient the output's gradient kept where the output
// is (activation.cpp): in the kernel sets, as the column products' relu,
// so that a locally connected layer's relu gradient, position by
// position, runs on the CPU's widest vectors (bench/NOTES.md).
template <typename T>
void keep_where_positive(const T* test, const T* value, T* out, index_t count);

// Rows [0, count) of a sample-major copy of R's doubles (trainer.hpp):
// rows[i * features + f] = from[f * n + i] as T, where `from` holds each
// feature's run of n samples from the copy's first row on. In the kernel
// sets, so that each square of a vector's lanes of samples and features is
// converted and transposed in registers and stored a line at a time
// (bench/NOTES.md). Returns whether any value copied is not finite in T
// (NaN, R's NA among them, infinite, or beyond T's range before the
// conversion), found on the way at no cost that shows.
template <typename T>
bool sample_major_rows(const double* from, index_t n, index_t count, T* rows, index_t features);

// The kernel sets this build and this CPU can run, narrowest first
// ("baseline", then "avx2", "avx512").
std::vector<std::string> available_cpu_kernels();

// The kernel set in use; the widest available one unless chosen otherwise.
std::string cpu_kernels();

// Uses the named set from now on; throws std::invalid_argument when it is
// not one of available_cpu_kernels().
void use_cpu_kernels(const std::string& name);

}  // namespace lcnn
