// The product kernels, the optimizer's update, the elementwise losses,
// relu, the scan for values that are not finite and the sample-major copy of R's data,
// compiled once per instruction set:
// the build defines LCNN_KERNELS to baseline, avx2 or avx512 and adds that
// set's compiler flags. Eigen is renamed per build, so the template code
// each build instantiates stays in a namespace of its own and the linker can
// never swap an AVX-512 instantiation into the baseline path (tests/cpp
// checks the objects for that).
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

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>
#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "elementwise_loss.hpp"
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

// The column product (gemm.hpp) on the widest vectors of this build's
// instruction set, written with GCC's vector extensions so that one source
// serves every set. A tile keeps kTileVectors x kTileColumns accumulators in
// registers: per column of `a`, kTileVectors vector loads and kTileColumns
// broadcasts of `s` feed their product of fused multiply-adds. Six columns
// fill the registers with room for the loads (AVX-512: 24 accumulators, 4
// loads and a broadcast of 32; AVX and SSE: 12, 2 and 1 of 16) and gave
// forward passes 7-14% over four (bench/NOTES.md).
#if defined(__AVX512F__)
constexpr int kVectorBytes = 64;
constexpr int kTileVectors = 4;
#elif defined(__AVX__)
constexpr int kVectorBytes = 32;
constexpr int kTileVectors = 2;
#else
constexpr int kVectorBytes = 16;
constexpr int kTileVectors = 2;
#endif
constexpr int kTileColumns = 6;
// Columns of a tile whose rows are one vector (a block of at most a
// vector of rows, such as a first layer's weight gradient over a patch of
// 9 values). Six accumulators there each wait on their own last
// multiply-add (four cycles, two issued a cycle); this many leave
// registers for the load and the broadcast (AVX-512: 16 of 32; AVX and
// SSE: 12 of 16), and the block's rows are loaded once per wide tile
// instead of once per six columns. GCC addresses the broadcasts through
// one register advanced by the column stride, a chain of additions that
// still bounds the tile: that layer's backward pass is 5-12% faster, not
// more (bench/NOTES.md).
#if defined(__AVX512F__)
constexpr int kWideTileColumns = 16;
#else
constexpr int kWideTileColumns = 12;
#endif
// Bytes of `a` one block covers (rows x columns of a): the block stays in
// the L1 cache while every column tile of the result passes over it. Also
// the size of the buffer a block is copied into, on the stack.
constexpr index_t kBlockBytes = index_t(32) << 10;

template <typename T>
struct Lanes {
  typedef T Vector __attribute__((vector_size(kVectorBytes)));
  // Lane numbers for GCC's __builtin_shuffle(), integers as wide as T.
  typedef std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t> Lane;
  typedef Lane Indices __attribute__((vector_size(kVectorBytes)));
  static constexpr index_t count = kVectorBytes / sizeof(T);
};
template <typename T>
using Vector = typename Lanes<T>::Vector;

// The loads and stores below are always inlined: a call takes its vector
// by address, so a tile's accumulators would live in memory. GCC's -O3
// (a -march=native build) stopped inlining store_rows() once it had a
// masked branch, and the tiles ran at half speed.
template <typename T>
LCNN_ALWAYS_INLINE Vector<T> load(const T* p) {
  Vector<T> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename T>
LCNN_ALWAYS_INLINE void store(T* p, const Vector<T>& v) {
  std::memcpy(p, &v, sizeof v);
}

// One block of the sum: `a` columns [0, count), whose rows are the
// result's less a_shift (a block copied into a buffer starts at its first
// row), against `s` from the block's first column on. The result has `rows`
// rows; a vector reaching past them is loaded and stored in part.
template <typename T>
struct ColumnBlock {
  const T* const* a;
  const T* s;
  index_t count, a_shift, s_l, s_j, rows;
  bool from_c;  // the base is the result's current value (else init or 0)
  bool rectify;  // the sums end here: store relu of them
};

// Each lane of `value` where that of `test` is above zero, else +0 (a NaN
// test included). relu of v is v kept where v is positive, the values of
// activation_value(); its gradient is the output's gradient kept where
// the output is.
template <typename T>
LCNN_ALWAYS_INLINE Vector<T> kept_where_positive(const Vector<T>& test, const Vector<T>& value) {
  const auto positive = test > Vector<T>{};
  return (Vector<T>)((decltype(positive))value & positive);
}

// The lanes below `count` (fewer than a vector) as a mask.
#if defined(__AVX512F__)
template <typename T>
LCNN_ALWAYS_INLINE auto first_lanes(index_t count) {
  const unsigned bits = (1u << count) - 1;
  if constexpr (sizeof(T) == 4) return static_cast<__mmask16>(bits);
  else return static_cast<__mmask8>(bits);
}
#elif defined(__AVX2__)
template <typename T>
LCNN_ALWAYS_INLINE auto first_lanes(index_t count) {
  if constexpr (sizeof(T) == 4) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  } else {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(count), _mm256_setr_epi64x(0, 1, 2, 3));
  }
}
#endif

// The first `count` values at p (fewer than a vector), the other lanes zero;
// and their store. With AVX2 and AVX-512 one masked instruction, which
// touches no memory past them; else a copy through memory. The last rows of
// a column product's result columns, the last values of the rows that the
// transposing copy reads and the optimizer's last parameters go through
// these.
template <typename T>
LCNN_ALWAYS_INLINE Vector<T> load_part(const T* p, index_t count) {
#if defined(__AVX512F__)
  if constexpr (sizeof(T) == 4) return Vector<T>(_mm512_maskz_loadu_ps(first_lanes<T>(count), p));
  else return Vector<T>(_mm512_maskz_loadu_pd(first_lanes<T>(count), p));
#elif defined(__AVX2__)
  if constexpr (sizeof(T) == 4) return Vector<T>(_mm256_maskload_ps(p, first_lanes<T>(count)));
  else return Vector<T>(_mm256_maskload_pd(p, first_lanes<T>(count)));
#else
  Vector<T> v{};
  std::memcpy(&v, p, static_cast<std::size_t>(count) * sizeof(T));
  return v;
#endif
}
template <typename T>
LCNN_ALWAYS_INLINE void store_part(T* p, index_t count, const Vector<T>& v) {
#if defined(__AVX512F__)
  if constexpr (sizeof(T) == 4) _mm512_mask_storeu_ps(p, first_lanes<T>(count), __m512(v));
  else _mm512_mask_storeu_pd(p, first_lanes<T>(count), __m512d(v));
#elif defined(__AVX2__)
  if constexpr (sizeof(T) == 4) _mm256_maskstore_ps(p, first_lanes<T>(count), __m256(v));
  else _mm256_maskstore_pd(p, first_lanes<T>(count), __m256d(v));
#else
  std::memcpy(p, &v, static_cast<std::size_t>(count) * sizeof(T));
#endif
}

template <typename T>
LCNN_ALWAYS_INLINE Vector<T> load_rows(const T* column, index_t first, index_t rows) {
  if (first + Lanes<T>::count <= rows) return load(column + first);
  return load_part(column + first, rows - first);
}
template <typename T>
LCNN_ALWAYS_INLINE void store_rows(T* column, index_t first, index_t rows, const Vector<T>& v) {
  if (first + Lanes<T>::count <= rows) {
    store(column + first, v);
  } else {
    store_part(column + first, rows - first, v);
  }
}

// Rows [row, row + R vectors) of result columns [j0, j0 + J), adding the
// block's columns.
template <typename T, int R, int J>
void column_tile(const ColumnBlock<T>& block, index_t row, index_t j0, T* const* c,
                 const T* init) {
  constexpr index_t lanes = Lanes<T>::count;
  Vector<T> acc[R][J];
#pragma GCC unroll 16
  for (int j = 0; j < J; ++j) {
    const T* column = c[j0 + j];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      acc[r][j] = block.from_c ? (column != nullptr ? load_rows(column, row + r * lanes, block.rows)
                                                    : Vector<T>{})
                               : Vector<T>{} + (init != nullptr ? init[j0 + j] : T(0));
    }
  }
  const T* weights = block.s + j0 * block.s_j;
  const index_t a_row = row - block.a_shift;
  for (index_t l = 0; l < block.count; ++l) {
    const T* column = block.a[l];
    if (column == nullptr) continue;
    Vector<T> x[R];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) x[r] = load(column + a_row + r * lanes);
    const T* w = weights + l * block.s_l;
#pragma GCC unroll 16
    for (int j = 0; j < J; ++j) {
      const T wj = w[j * block.s_j];
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) acc[r][j] += x[r] * wj;
    }
  }
#pragma GCC unroll 16
  for (int j = 0; j < J; ++j) {
    T* column = c[j0 + j];
    if (column == nullptr) continue;
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      store_rows(column, row + r * lanes, block.rows,
                 block.rectify ? kept_where_positive<T>(acc[r][j], acc[r][j]) : acc[r][j]);
    }
  }
}

template <typename T, int R>
void column_tile_of_width(int columns, const ColumnBlock<T>& block, index_t row, index_t j0,
                          T* const* c, const T* init) {
  static_assert(kTileColumns == 6, "one case per tile width");
  switch (columns) {
    case 1: column_tile<T, R, 1>(block, row, j0, c, init); break;
    case 2: column_tile<T, R, 2>(block, row, j0, c, init); break;
    case 3: column_tile<T, R, 3>(block, row, j0, c, init); break;
    case 4: column_tile<T, R, 4>(block, row, j0, c, init); break;
    case 5: column_tile<T, R, 5>(block, row, j0, c, init); break;
    default: column_tile<T, R, 6>(block, row, j0, c, init); break;
  }
}

template <typename T>
void column_tile_of_size(int vectors, int columns, const ColumnBlock<T>& block, index_t row,
                         index_t j0, T* const* c, const T* init) {
  static_assert(kTileVectors <= 4, "one case per tile height");
  switch (vectors) {
    case 1: column_tile_of_width<T, 1>(columns, block, row, j0, c, init); break;
    case 2: column_tile_of_width<T, 2>(columns, block, row, j0, c, init); break;
    case 3: column_tile_of_width<T, 3>(columns, block, row, j0, c, init); break;
    default: column_tile_of_width<T, kTileVectors>(columns, block, row, j0, c, init); break;
  }
}

// Rows of no whole vector, one value at a time over all of a's columns.
template <typename T>
void column_rows(index_t row_begin, index_t row_end, index_t n, index_t k, const T* const* a,
                 const T* s, index_t s_l, index_t s_j, T* const* c, const T* init,
                 bool accumulate, bool rectify) {
  for (index_t j = 0; j < n; ++j) {
    T* column = c[j];
    if (column == nullptr) continue;
    for (index_t i = row_begin; i < row_end; ++i) {
      T sum = accumulate ? column[i] : (init != nullptr ? init[j] : T(0));
      for (index_t l = 0; l < k; ++l) {
        if (a[l] != nullptr) sum += a[l][i] * s[l * s_l + j * s_j];
      }
      column[i] = rectify && !(sum > T(0)) ? T(0) : sum;
    }
  }
}

// Lane k of the two-vector shuffles of a step of distance d (below): taken
// from the upper row, lane k of the result comes from the lower row's lane
// k - d where bit d of k is set (lanes past the first vector number the
// second); taken for the lower row, from the upper row's lane k + d where
// it is clear.
constexpr index_t lane_for_upper(index_t k, index_t d, index_t lanes) {
  return (k & d) != 0 ? k - d + lanes : k;
}
constexpr index_t lane_for_lower(index_t k, index_t d, index_t lanes) {
  return (k & d) != 0 ? k + lanes : k + d;
}

// One step of transpose_square(): the two off-diagonal d x d blocks of
// each 2d x 2d block of the square trade places, one two-vector shuffle
// per vector, with constant lane numbers (GCC's and Clang's builtins
// differ).
template <typename T, index_t d, std::size_t... k>
LCNN_ALWAYS_INLINE void swap_off_diagonal_blocks(Vector<T>* square, std::index_sequence<k...>) {
  constexpr index_t lanes = Lanes<T>::count;
#pragma GCC unroll 16
  for (index_t r = 0; r < lanes; ++r) {
    if ((r & d) != 0) continue;
    const Vector<T> upper = square[r], lower = square[r + d];
#if defined(__clang__)
    square[r] = __builtin_shufflevector(upper, lower, lane_for_upper(k, d, lanes)...);
    square[r + d] = __builtin_shufflevector(upper, lower, lane_for_lower(k, d, lanes)...);
#else
    using Indices = typename Lanes<T>::Indices;
    square[r] = __builtin_shuffle(upper, lower, Indices{lane_for_upper(k, d, lanes)...});
    square[r + d] = __builtin_shuffle(upper, lower, Indices{lane_for_lower(k, d, lanes)...});
#endif
  }
}

// Transposes a square of lanes x lanes values held in registers, row r in
// square[r] (afterwards column r): a step for each bit d of a lane number
// moves value (r, k) to (r ^ d, k ^ d) where bit d of r and k differ, so
// the steps together move it to (k, r). lanes * log2(lanes) shuffles, in
// place of a load and a store per value.
template <typename T, index_t d = Lanes<T>::count / 2>
LCNN_ALWAYS_INLINE void transpose_square(Vector<T>* square) {
  swap_off_diagonal_blocks<T, d>(square, std::make_index_sequence<Lanes<T>::count>());
  if constexpr (d > 1) transpose_square<T, d / 2>(square);
}

// Copies rows [r0, r1) of `a`'s columns [l0, l0 + count) into `buffer`,
// column after column, zero past row m; points `copied` at the columns
// (null for a zero column given by column). Rows go in squares of lanes x
// lanes, transposed in registers (r1 - r0 is whole vectors).
template <typename T>
void copy_block(index_t m, const T* const* a, PointerTo a_points_to, index_t r0, index_t r1,
                index_t l0, index_t count, T* buffer, const T** copied) {
  const index_t height = r1 - r0, inside = std::min(m, r1) - r0;
  if (a_points_to == PointerTo::columns) {
    for (index_t l = 0; l < count; ++l) {
      const T* source = a[l0 + l];
      T* column = buffer + l * height;
      copied[l] = source == nullptr ? nullptr : column;
      if (source == nullptr) continue;
      std::copy(source + r0, source + r0 + inside, column);
      std::fill(column + inside, column + height, T(0));
    }
    return;
  }
  constexpr index_t lanes = Lanes<T>::count;
  for (index_t l = 0; l < count; ++l) copied[l] = buffer + l * height;
  for (index_t i = 0; i < height; i += lanes) {
    for (index_t l = 0; l < count; l += lanes) {
      // Both loops unrolled, so that the square stays in registers (with
      // a bound known only at run time it went through the stack).
      Vector<T> square[lanes];
#pragma GCC unroll 16
      for (index_t r = 0; r < lanes; ++r) {
        const T* source = i + r < inside ? a[r0 + i + r] : nullptr;
        square[r] = source != nullptr ? load_rows(source + l0, l, count) : Vector<T>{};
      }
      transpose_square<T>(square);
      const index_t columns = std::min(lanes, count - l);
#pragma GCC unroll 16
      for (index_t j = 0; j < lanes; ++j) {
        if (j < columns) store(buffer + (l + j) * height + i, square[j]);
      }
    }
  }
}

// Asks for the values of `s` that the column tile of columns [j0, j1) of a
// block will read, one call to the tile before it. They stream from memory
// once, a few lines per column of the tile, too few for the hardware
// prefetcher to follow: without this a tile waits on memory for each new
// line. Always inlined: GCC takes a function of prefetches alone for one
// without effects and drops its calls.
template <typename T>
__attribute__((always_inline)) inline void prefetch_tile(const T* s, index_t s_l, index_t s_j,
                                                         index_t count, index_t j0, index_t j1) {
  constexpr index_t line = 64 / index_t(sizeof(T));
  if (s_l == 1) {
    for (index_t j = j0; j < j1; ++j) {
      const T* column = s + j * s_j;
      for (index_t l = 0; l < count; l += line) __builtin_prefetch(column + l);
      __builtin_prefetch(column + count - 1);
    }
  } else if (s_j == 1 && j0 < j1) {
    for (index_t l = 0; l < count; ++l) __builtin_prefetch(s + l * s_l + j0);
  }
}

// Asks for the result lines that the column tile of columns [j0, j1) will
// write, one tile ahead, with the intent to write them. A tile of a short
// patch (27 columns for a 3x3x3 one) computes for about 200 cycles, then
// stores its 16 vectors into the result's columns, one filter's feature
// map apart: without this each store waits for its line to come from L3 or
// memory. Not for results whose columns lie in one run (a layer that lays
// its output out for the next, a kernel gradient): the hardware's
// prefetcher follows those, and these requests, holding the line fill
// buffers, slowed a first layer's forward pass by 17% with cold caches
// (bench/NOTES.md). Always inlined, as prefetch_tile.
template <typename T>
__attribute__((always_inline)) inline void prefetch_results(T* const* c, index_t j0, index_t j1,
                                                            index_t r0, index_t r1) {
  constexpr index_t line = 64 / index_t(sizeof(T));
  for (index_t j = j0; j < j1; ++j) {
    if (c[j] == nullptr) continue;
    for (index_t i = r0; i < r1; i += line) __builtin_prefetch(c[j] + i, 1);
  }
}

// Whether columns [0, count) of `a`, m rows each, lie in at most
// kMaxRuns contiguous runs of memory, none of them null. A block so laid
// out stays in the L1 cache as well as a copy would: few runs cannot crowd
// the few cache sets that columns a page apart share.
constexpr index_t kMaxRuns = 8;

template <typename T>
bool in_few_runs(const T* const* a, index_t count, index_t m) {
  index_t runs = 1;
  for (index_t l = 0; l < count; ++l) {
    if (a[l] == nullptr) return false;
    if (l > 0 && a[l] != a[l - 1] + m && ++runs > kMaxRuns) return false;
  }
  return true;
}

// column_product() for a few rows (at most a quarter of a vector's lanes),
// `a` by columns and s's columns contiguous (s_l = 1): a locally connected
// or dense layer's forward pass on a batch of one to four samples, such as
// predict() of one. The column tiles' vectors run across rows, so they
// would hold one real value in 16 lanes (AVX-512 floats) and copy the rows
// into a padded block first. Here each result is a dot product instead:
// row i of `a`, gathered once, against column j of s, the vectors along
// the sum. Its lanes are added up one after another, so each result costs
// about as much as a vector of the column tiles: beyond a quarter of the
// lanes the tiles are faster (bench/NOTES.md).
template <typename T>
void dot_rows(index_t m, index_t n, index_t k, const T* const* a, const T* s, index_t s_j,
              T* const* c, const T* init, bool accumulate, bool rectify) {
  constexpr index_t lanes = Lanes<T>::count, stack_values = 2048;
  alignas(64) T stack_row[stack_values];
  std::vector<T> heap_row(k > stack_values ? k : 0);
  T* const row = k > stack_values ? heap_row.data() : stack_row;
  for (index_t i = 0; i < m; ++i) {
    for (index_t l = 0; l < k; ++l) row[l] = a[l] != nullptr ? a[l][i] : T(0);
    for (index_t j = 0; j < n; ++j) {
      if (c[j] == nullptr) continue;
      const T* column = s + j * s_j;
      // Two sums, so that consecutive multiply-adds do not wait on each other.
      Vector<T> even{}, odd{};
      index_t l = 0;
      for (; l + 2 * lanes <= k; l += 2 * lanes) {
        even += load(row + l) * load(column + l);
        odd += load(row + l + lanes) * load(column + l + lanes);
      }
      for (; l < k; l += lanes) even += load_rows(row, l, k) * load_rows(column, l, k);
      even += odd;
      T sum = 0;
      for (index_t lane = 0; lane < lanes; ++lane) sum += even[lane];
      const T value = (accumulate ? c[j][i] : init != nullptr ? init[j] : T(0)) + sum;
      // relu as kept_where_positive() gives it: +0 for a NaN and for -0.
      c[j][i] = rectify && !(value > T(0)) ? T(0) : value;
    }
  }
}

// Blocks of rows x columns of `a` of at most kBlockBytes: all of k for each
// block of rows when that fits (each result value is then written once),
// else one tile of rows and as many columns as fit. When several column
// tiles of the result pass over a block, or `a` comes by rows, the block is
// first copied into a contiguous buffer, its columns padded with zeros to
// whole vectors: a's columns may lie anywhere (a locally connected patch
// spans the input's channel planes), and loads from scattered lines and
// pages would run at half the speed of the multiply-adds. A block of whole
// vectors already in a few runs (a patch of an input laid out with channels
// inner) is read in place. Without a copy, rows past the last whole vector
// are summed one by one. A few rows by columns against s's contiguous
// columns go to dot_rows() instead.
template <typename T>
void column_product(index_t m, index_t n, index_t k, const T* const* a, PointerTo a_points_to,
                    const T* s, index_t s_l, index_t s_j, T* const* c, const T* init,
                    bool accumulate, bool rectify, Operand s_from) {
  constexpr index_t lanes = Lanes<T>::count, tile_rows = kTileVectors * lanes;
  if (4 * m <= lanes && s_l == 1 && a_points_to == PointerTo::columns) {
    return dot_rows(m, n, k, a, s, s_j, c, init, accumulate, rectify);
  }
  constexpr index_t budget = kBlockBytes / index_t(sizeof(T));
  alignas(64) T buffer[budget];
  const bool copy = n > kTileColumns || a_points_to == PointerTo::rows;
  const index_t vector_rows = copy ? (m + lanes - 1) / lanes * lanes : m / lanes * lanes;
  const index_t block_rows =
      std::max(tile_rows, budget / std::max<index_t>(k, 1) / tile_rows * tile_rows);
  // The copied columns of a block: at most budget / lanes, a block being
  // one vector of rows or more. On the stack: a locally connected layer
  // calls this once a position, and allocating them on the heap took 8% of
  // W7's first layer's forward pass in a harness (bench/NOTES.md).
  const T* copied[budget / lanes];
  // Whether the result's columns follow one another in memory (see
  // prefetch_results()).
  bool one_run = n > 0 && c[0] != nullptr;
  for (index_t j = 1; j < n && one_run; ++j) one_run = c[j] == c[j - 1] + m;
  for (index_t r0 = 0; r0 < vector_rows; r0 += block_rows) {
    const index_t r1 = std::min(vector_rows, r0 + block_rows);
    const index_t block_columns = std::max<index_t>(1, budget / (r1 - r0));
    for (index_t l0 = 0; l0 < k || l0 == 0; l0 += block_columns) {
      const index_t count = std::min(k, l0 + block_columns) - l0;
      ColumnBlock<T> block{a + l0, s + l0 * s_l, count, 0, s_l, s_j, m, accumulate || l0 > 0,
                           rectify && l0 + count == k};
      if (copy && !(a_points_to == PointerTo::columns && m % lanes == 0 &&
                    in_few_runs(a + l0, count, m))) {
        copy_block(m, a, a_points_to, r0, r1, l0, count, buffer, copied);
        block.a = copied;
        block.a_shift = r0;
      }
      // A block of one vector of rows goes in wide tiles while enough
      // columns remain.
      const bool one_vector = r1 - r0 == lanes;
      const auto tile_width = [&](index_t j0) {
        return one_vector && n - j0 >= kWideTileColumns ? index_t(kWideTileColumns)
                                                        : std::min<index_t>(kTileColumns, n - j0);
      };
      for (index_t j0 = 0, columns = tile_width(0); j0 < n;) {
        const index_t next = j0 + columns, next_columns = next < n ? tile_width(next) : 0;
        if (s_from == Operand::streamed) {
          prefetch_tile(block.s, s_l, s_j, count, next, next + next_columns);
        }
        if (!one_run) prefetch_results(c, next, next + next_columns, r0, std::min(r1, m));
        if (columns == kWideTileColumns) {
          column_tile<T, 1, kWideTileColumns>(block, r0, j0, c, init);
        } else {
          for (index_t row = r0; row < r1; row += tile_rows) {
            const int vectors = static_cast<int>(std::min(tile_rows, r1 - row) / lanes);
            column_tile_of_size<T>(vectors, static_cast<int>(columns), block, row, j0, c, init);
          }
        }
        j0 = next;
        columns = next_columns;
      }
    }
  }
  if (!copy) column_rows(vector_rows, m, n, k, a, s, s_l, s_j, c, init, accumulate, rectify);
}

// The square root of each lane, on this build's vector instructions (one
// lane at a time where there are none).
struct VectorRoot {
  template <typename V>
  LCNN_ALWAYS_INLINE V operator()(const V& x) const {
    constexpr bool single = sizeof(x[0]) == 4;
#if defined(__AVX512F__)
    // The zero-masked forms: the plain ones start from an undefined
    // register, which GCC 12 reports as maybe uninitialized.
    if constexpr (single) return V(_mm512_maskz_sqrt_ps(__mmask16(0xFFFF), __m512(x)));
    else return V(_mm512_maskz_sqrt_pd(__mmask8(0xFF), __m512d(x)));
#elif defined(__AVX__)
    if constexpr (single) return V(_mm256_sqrt_ps(__m256(x)));
    else return V(_mm256_sqrt_pd(__m256d(x)));
#elif defined(__SSE2__)
    if constexpr (single) return V(_mm_sqrt_ps(__m128(x)));
    else return V(_mm_sqrt_pd(__m128d(x)));
#else
    V root = x;
    for (std::size_t i = 0; i < sizeof(V) / sizeof(x[0]); ++i) root[i] = std::sqrt(x[i]);
    return root;
#endif
  }
};

// update_parameters() (gemm.hpp): update_value() (optimizer_update.hpp) on
// one vector of parameters at a time, each value, gradient and slot loaded
// once. R's -O2 does not vectorise a loop over a per-parameter function;
// here the square roots and divisions of Adam, RMSprop and Adagrad run on
// the widest vectors the CPU has (bench/NOTES.md). The last vector is
// loaded in part and padded with zeros, so that every parameter goes
// through the same vector arithmetic: its update does not depend on which
// others are updated with it (the layers that update position by position
// in backward() match the whole blocks' updates bit for bit).
template <typename T, int S>
void update_vectors(const UpdateRule<T>& shared_rule, T* values, const T* gradient, T* slots,
                    index_t slot_stride, index_t count) {
  constexpr index_t lanes = Lanes<T>::count;
  // A copy, which the stores to `values` (of the same type) cannot alias:
  // its constants stay in registers.
  const UpdateRule<T> rule = shared_rule;
  for (index_t i = 0; i < count; i += lanes) {
    Vector<T> w = load_rows(values, i, count);
    const Vector<T> g = load_rows(gradient, i, count);
    Vector<T> slot[3] = {};  // all three, so that no rule's index is out of bounds
#pragma GCC unroll 3
    for (int k = 0; k < S; ++k) slot[k] = load_rows(slots + k * slot_stride, i, count);
    update_value(rule, w, g, slot, 1, VectorRoot{});
    store_rows(values, i, count, w);
#pragma GCC unroll 3
    for (int k = 0; k < S; ++k) store_rows(slots + k * slot_stride, i, count, slot[k]);
  }
}

template <typename T>
void update_parameters(const UpdateRule<T>& rule, T* values, const T* gradient, T* slots,
                       int slot_count, index_t slot_stride, index_t count) {
  switch (slot_count) {
    case 0: return update_vectors<T, 0>(rule, values, gradient, slots, slot_stride, count);
    case 1: return update_vectors<T, 1>(rule, values, gradient, slots, slot_stride, count);
    case 2: return update_vectors<T, 2>(rule, values, gradient, slots, slot_stride, count);
    default: return update_vectors<T, 3>(rule, values, gradient, slots, slot_stride, count);
  }
}

// Lanes of v that are not within [-bound, bound] (all bits set): both
// comparisons fail for a NaN, so one test covers NaN, infinite and too
// large values.
template <typename T>
LCNN_ALWAYS_INLINE typename Lanes<T>::Indices outside(const Vector<T>& v,
                                                      const Vector<T>& bound) {
  return ~((v <= bound) & (v >= -bound));
}

// any_not_finite()'s scan of one block (gemm.hpp), four vectors a step.
// The last vector is loaded in part, its other lanes zero.
bool any_not_finite_block(const double* values, index_t count, double bound) {
  constexpr index_t lanes = Lanes<double>::count, step = 4 * lanes;
  const Vector<double> limit = Vector<double>{} + bound;
  typename Lanes<double>::Indices found{};
  index_t i = 0;
  for (; i + step <= count; i += step) {
#pragma GCC unroll 4
    for (index_t k = 0; k < step; k += lanes) {
      found |= outside<double>(load(values + i + k), limit);
    }
  }
  for (; i < count; i += lanes) found |= outside<double>(load_rows(values, i, count), limit);
  for (index_t lane = 0; lane < lanes; ++lane) {
    if (found[lane] != 0) return true;
  }
  return false;
}

// keep_where_positive() (gemm.hpp), two vectors a step; the last one
// loaded and stored in part.
template <typename T>
void keep_where_positive(const T* test, const T* value, T* out, index_t count) {
  constexpr index_t lanes = Lanes<T>::count;
  index_t i = 0;
  for (; i + 2 * lanes <= count; i += 2 * lanes) {
    const Vector<T> first = kept_where_positive<T>(load(test + i), load(value + i));
    const Vector<T> second =
        kept_where_positive<T>(load(test + i + lanes), load(value + i + lanes));
    store(out + i, first);
    store(out + i + lanes, second);
  }
  for (; i < count; i += lanes) {
    store_rows(out, i, count,
               kept_where_positive<T>(load_rows(test, i, count), load_rows(value, i, count)));
  }
}

// Stores a vector at p, on a vector's boundary, without reading p's line
// in first where the instruction set has such stores; end_streaming()
// orders them before what follows.
template <typename T>
LCNN_ALWAYS_INLINE void stream(T* p, const Vector<T>& v) {
#if defined(__AVX512F__)
  if constexpr (sizeof(T) == 4) _mm512_stream_ps(p, __m512(v));
  else _mm512_stream_pd(p, __m512d(v));
#elif defined(__AVX__)
  if constexpr (sizeof(T) == 4) _mm256_stream_ps(p, __m256(v));
  else _mm256_stream_pd(p, __m256d(v));
#elif defined(__SSE2__)
  if constexpr (sizeof(T) == 4) _mm_stream_ps(p, __m128(v));
  else _mm_stream_pd(p, __m128d(v));
#else
  store(p, v);
#endif
}

inline void end_streaming() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

// A vector of T from as many of R's doubles at p.
template <typename T>
LCNN_ALWAYS_INLINE Vector<T> load_converted(const double* p) {
  if constexpr (std::is_same_v<T, double>) {
    return load(p);
  } else {
    typedef double Doubles __attribute__((vector_size(Lanes<T>::count * sizeof(double))));
    Doubles doubles;
    std::memcpy(&doubles, p, sizeof doubles);
    return __builtin_convertvector(doubles, Vector<T>);
  }
}

// Doubles ahead of a square's that sample_major_rows() asks for: its runs
// are as many streams as a vector has lanes, more than the hardware
// prefetcher follows.
constexpr index_t kSampleMajorAhead = 128;

// `passes` passes of sample_major_rows() value by value over `count` rows,
// each writing Width features of every row from Width of R's runs (n
// apart) read side by side. A fixed width lets the compiler unroll a row's
// stores. Returns whether any value copied is not finite in T.
template <index_t Width, typename T>
bool copy_passes(const double* runs, index_t n, index_t count, T* rows, index_t features,
                 index_t passes) {
  constexpr T largest = std::numeric_limits<T>::max();
  bool found = false;
  for (index_t p = 0; p < passes; ++p, runs += Width * n, rows += Width) {
    for (index_t i = 0; i < count; ++i) {
      T* const row = rows + i * features;
      for (index_t f = 0; f < Width; ++f) {
        const T value = T(runs[f * n + i]);
        found |= !(value <= largest && value >= -largest);
        row[f] = value;
      }
    }
  }
  return found;
}

// sample_major_rows() (gemm.hpp). Where the rows start on a cache line and
// hold whole lines, in squares of `lanes` samples x `lanes` features: each
// feature's doubles converted into one vector, the square transposed in
// registers, and each sample's vector stored with a streaming store, which
// writes its line without reading it in first. The squares of a line's
// features go one after the other, so that each line is written whole at
// once: a line written in parts far apart costs a streaming store's
// buffer a read of it after all. Else, and for the samples after the
// last whole square, value by value in passes of 8 features, each reading
// 8 runs side by side and writing each row's 8 values together
// (bench/NOTES.md). Each converted vector is also tested for values that
// are not finite (outside()): NaN, R's NA among them, infinite, or made
// infinite by the conversion to float32, so that fit() need not scan the
// data on its own before it copies them.
template <typename T>
bool sample_major_rows(const double* from, index_t n, index_t count, T* rows,
                       index_t features) {
  constexpr index_t lanes = Lanes<T>::count, line = 64 / index_t(sizeof(T)), width = 8;
  static_assert(line % lanes == 0, "whole vectors to a cache line");
  const bool squares =
      features % line == 0 && reinterpret_cast<std::uintptr_t>(rows) % 64 == 0;
  const index_t done = squares ? count / lanes * lanes : 0;
  const Vector<T> limit = Vector<T>{} + std::numeric_limits<T>::max();
  typename Lanes<T>::Indices found{};
  for (index_t f1 = 0; f1 < features && done > 0; f1 += line) {
    for (index_t i = 0; i < done; i += lanes) {
      for (index_t f0 = f1; f0 < f1 + line; f0 += lanes) {
        Vector<T> square[lanes];
#pragma GCC unroll 16
        for (index_t r = 0; r < lanes; ++r) {
          const double* run = from + (f0 + r) * n + i;
          for (index_t ahead = 0; ahead < lanes; ahead += 64 / index_t(sizeof(double))) {
            __builtin_prefetch(run + kSampleMajorAhead + ahead);
          }
          square[r] = load_converted<T>(run);
          found |= outside<T>(square[r], limit);
        }
        transpose_square<T>(square);
#pragma GCC unroll 16
        for (index_t s = 0; s < lanes; ++s) stream(rows + (i + s) * features + f0, square[s]);
      }
    }
  }
  if (done > 0) end_streaming();
  const index_t passes = features / width, whole = passes * width;
  T* const rest = rows + done * features;
  bool any = copy_passes<width>(from + done, n, count - done, rest, features, passes);
  any |= copy_passes<1>(from + whole * n + done, n, count - done, rest + whole, features,
                        features - whole);
  for (index_t lane = 0; lane < lanes; ++lane) any |= found[lane] != 0;
  return any;
}

// The elementwise losses' instances of this set (elementwise_loss.hpp),
// and its vector width.
struct ThisSet {
  static constexpr int kVectorBytes = lcnn::LCNN_PASTE(kernels_, LCNN_KERNELS)::kVectorBytes;
};

}  // namespace

GemmKernels table() {
  return {LCNN_STRING(LCNN_KERNELS),
          &product<float>,
          &product<double>,
          &column_product<float>,
          &column_product<double>,
          &update_parameters<float>,
          &update_parameters<double>,
          &elementwise::loss_block<ThisSet, float, float>,
          &elementwise::loss_block<ThisSet, float, double>,
          &elementwise::loss_block<ThisSet, double, double>,
          &any_not_finite_block,
          &keep_where_positive<float>,
          &keep_where_positive<double>,
          &sample_major_rows<float>,
          &sample_major_rows<double>};
}

}  // namespace LCNN_PASTE(kernels_, LCNN_KERNELS)
}  // namespace lcnn
