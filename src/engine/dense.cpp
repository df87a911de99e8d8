#include "dense.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>
#include <vector>

#include "eigen_maps.hpp"
#include "gemm.hpp"
#include "parallel.hpp"

namespace lcnn {

namespace {

// A dense layer's products, (m x n) = (m x k)(k x n), run in parallel
// blocks of their result, each one column product (gemm.hpp), which reads
// the operands where they lie, or one of Eigen's GEMMs, which packs them
// (dense_column_products()): blocks of rows read the right operand whole
// each time, blocks of columns the left one (and transpose it again where
// it comes by rows, as the input does for the kernel gradient). The result is
// split along the side that is read again less in all, into at most
// kMaxBlocks blocks, fixed by the shape alone (never by the thread count):
// blocks of at least kMinBlock columns or rows, and for column products of
// at least kMinTileRows rows, a whole tile of the widest kernel set's
// product (AVX-512: four vectors of 16 floats), which blocks of fewer rows
// would run at part of its speed. With a batch of 64, W7's 1,152 -> 128
// layer packed its input eight times for the kernel gradient in blocks of
// units, and as column products its forward pass in two blocks of 32
// samples took 12% longer than in four of 32 units (bench/NOTES.md).
constexpr index_t kMinBlock = 32;
constexpr index_t kMinTileRows = 64;
constexpr index_t kMaxBlocks = 8;

// A column product's right-hand operand of fewer bytes than this is in the
// caches when the product runs, so the product does not ask for its lines
// ahead (Operand): a kernel that small stays there from one training step
// to the next (W7's of 590 KB), and the output's gradient, for the kernel
// gradient, has just been written (bench/NOTES.md).
constexpr std::size_t kCachedOperandBytes = std::size_t(1) << 20;

template <typename T>
Operand operand_of(index_t values) {
  return static_cast<std::size_t>(values) * sizeof(T) < kCachedOperandBytes ? Operand::cached
                                                                           : Operand::streamed;
}

index_t blocks_along(index_t side, index_t min_block) {
  return std::max<index_t>(1, std::min(kMaxBlocks, side / min_block));
}

// body(row, rows, col, cols) for each block of an (m x n) result of an
// inner dimension k, blocks of rows at least min_rows high.
template <typename Body>
void for_each_result_block(index_t m, index_t n, index_t k, index_t min_rows, int threads,
                           Body body) {
  const index_t row_blocks = blocks_along(m, min_rows);
  const index_t col_blocks = blocks_along(n, kMinBlock);
  const bool by_rows =
      col_blocks == 1 || (row_blocks > 1 && (row_blocks - 1) * k * n <= (col_blocks - 1) * m * k);
  const index_t side = by_rows ? m : n, blocks = by_rows ? row_blocks : col_blocks;
  const index_t block = std::max<index_t>(1, (side + blocks - 1) / blocks);
  for_each_block(side, block, threads, [&](index_t start, index_t count) {
    if (by_rows) {
      body(start, count, index_t(0), n);
    } else {
      body(index_t(0), m, start, count);
    }
  });
}

// Pointers to columns [col, col + cols) of a column-major matrix with
// leading dimension ld, each from row `row` on; column j is stored as
// column_at(j).
template <typename Pointer, typename ColumnAt>
std::vector<Pointer> column_pointers(Pointer base, index_t ld, index_t row, index_t col,
                                     index_t cols, ColumnAt column_at) {
  std::vector<Pointer> columns(static_cast<std::size_t>(cols));
  for (index_t j = 0; j < cols; ++j) columns[j] = base + row + column_at(col + j) * ld;
  return columns;
}

template <typename Pointer>
std::vector<Pointer> column_pointers(Pointer base, index_t ld, index_t row, index_t col,
                                     index_t cols) {
  return column_pointers(base, ld, row, col, cols, [](index_t j) { return j; });
}

}  // namespace

// The column product streams the kernel unpacked, once per tile of 64 rows
// of a block: the faster for a batch of up to one tile, or a kernel that
// stays in the core's cache, but on more samples through a larger kernel
// Eigen's packed, cache-blocked GEMMs win (measured: 256 samples through
// 1,024 -> 1,024, forward 27% and backward 19% slower as column products;
// bench/NOTES.md).
bool dense_column_products(index_t samples, index_t kernel_size) {
  constexpr index_t kColumnProductRows = 64;
  constexpr index_t kColumnProductKernel = index_t(1) << 18;
  return samples <= kColumnProductRows || kernel_size < kColumnProductKernel;
}

template <typename T>
Dense<T>::Dense(const Shape& input, index_t units, Activation activation, std::vector<T> kernel,
                std::vector<T> bias)
    : input_(input), units_(units), activation_(activation) {
  if (input_.rank() < 1 || input_.size() < 1 || units_ < 1) {
    throw std::invalid_argument("dense layer needs a non-empty input and units >= 1");
  }
  const index_t D = input_.dims.back();
  if (static_cast<index_t>(kernel.size()) != D * units_) {
    throw std::invalid_argument("dense kernel has " + std::to_string(kernel.size()) +
                                " values, expected " + std::to_string(D * units_));
  }
  if (!bias.empty() && static_cast<index_t>(bias.size()) != units_) {
    throw std::invalid_argument("dense bias has " + std::to_string(bias.size()) +
                                " values, expected " + std::to_string(units_));
  }
  parameters_.push_back({"kernel", std::move(kernel), {}});
  if (!bias.empty()) parameters_.push_back({"bias", std::move(bias), {}});
}

template <typename T>
bool Dense<T>::read_through(const Gather<T>& gather,
                            const std::function<index_t(index_t)>& stored_at) {
  if (input_.rank() != 1 || gather.output_shape() != input_ || !gather.permutes()) return false;
  std::vector<index_t> source = gather.source();
  if (stored_at) {
    for (index_t& feature : source) feature = stored_at(feature);
  }
  through_ = std::make_unique<Gather<T>>(gather.input_shape(), gather.output_shape(),
                                         std::move(source));
  return true;
}

template <typename T>
const Tensor<T>& Dense<T>::laid_out(const Tensor<T>& input, const Context& ctx) {
  if (!through_) return input;
  through_->forward(input, gathered_, ctx);
  return gathered_;
}

template <typename T>
Shape Dense<T>::output_shape() const {
  Shape out = input_;
  out.dims.back() = units_;
  return out;
}

// Batch-innermost storage makes the input an (N x D) column-major matrix,
// N = batch x the axes before the last; blocks of the result run in
// parallel. Read through a gather, column d of that matrix is the input's
// feature input_feature(d): the column products take it there, Eigen's
// GEMMs from the gathered copy (laid_out()).
template <typename T>
void Dense<T>::forward(const Tensor<T>& input, Tensor<T>& output, const Context& ctx) {
  const Shape& expected = through_ ? through_->input_shape() : input_;
  if (input.shape != expected.with_batch(input.batch())) {
    throw std::invalid_argument("dense layer expected input " + expected.to_string() +
                                " per sample, got " + input.shape.to_string());
  }
  const index_t D = input_.dims.back(), F = units_;
  const index_t N = input.shape.size() / D;
  const bool columns = dense_column_products(N, D * F);
  output.resize(output_shape().with_batch(input.batch()));
  const T* x = columns ? input.data.data() : laid_out(input, ctx).data.data();
  const T* w = parameters_[0].values.data();
  T* y = output.data.data();
  const T* bias = parameters_.size() > 1 ? parameters_[1].values.data() : nullptr;
  const index_t min_rows = columns ? kMinTileRows : kMinBlock;
  // Column products store relu as they finish each value.
  const bool rectify = columns && activation_.kind() == Activation::relu;
  for_each_result_block(N, F, D, min_rows, ctx.threads, [&](index_t row, index_t rows,
                                                            index_t col, index_t cols) {
    if (columns) {
      const std::vector<const T*> x_columns =
          column_pointers(x, N, row, 0, D, [&](index_t d) { return input_feature(d); });
      const std::vector<T*> y_columns = column_pointers(y, N, row, col, cols);
      column_product<T>(rows, cols, D, x_columns.data(), PointerTo::columns, w + col * D, 1, D,
                        y_columns.data(), bias != nullptr ? bias + col : nullptr, false,
                        rectify, operand_of<T>(D * F));
    } else {
      gemm(Op::none, Op::none, rows, cols, D, x + row, N, w + col * D, D, y + row + col * N, N,
           false);
      if (bias != nullptr) {
        Map<T>(y, N, F).block(row, col, rows, cols).rowwise() += ConstRowMap<T>(bias + col, cols);
      }
    }
  });
  if (!rectify) activation_.apply(output, ctx.record, ctx.threads);
}

template <typename T>
void Dense<T>::backward(const Tensor<T>& input, const Tensor<T>& output,
                        const Tensor<T>& grad_output, Tensor<T>* grad_input, const Context& ctx,
                        bool through_logits) {
  const Tensor<T>& grad_pre =
      activation_.pre_gradient(output, grad_output, through_logits, grad_pre_, ctx.threads);
  const index_t D = input_.dims.back(), F = units_;
  const index_t N = input.shape.size() / D;
  const bool columns = dense_column_products(N, D * F);
  const T* x = columns ? input.data.data() : laid_out(input, ctx).data.data();
  const T* w = parameters_[0].values.data();
  const T* g = grad_pre.data.data();
  std::vector<T>& kernel_grad = parameters_[0].gradient;
  kernel_grad.resize(parameters_[0].values.size());
  const index_t min_rows = columns ? kMinTileRows : kMinBlock;
  // dW = x' g: the input's columns are the rows of x'.
  for_each_result_block(D, F, N, min_rows, ctx.threads, [&](index_t row, index_t rows,
                                                            index_t col, index_t cols) {
    if (columns) {
      const std::vector<const T*> x_rows =
          column_pointers(x, N, 0, row, rows, [&](index_t d) { return input_feature(d); });
      const std::vector<T*> grad_columns = column_pointers(kernel_grad.data(), D, row, col, cols);
      column_product<T>(rows, cols, N, x_rows.data(), PointerTo::rows, g + col * N, 1, N,
                        grad_columns.data(), nullptr, false, false, operand_of<T>(N * F));
    } else {
      gemm(Op::transpose, Op::none, rows, cols, N, x + row * N, N, g + col * N, N,
           kernel_grad.data() + row + col * D, D, false);
    }
  });
  if (parameters_.size() > 1) {
    std::vector<T>& bias_grad = parameters_[1].gradient;
    bias_grad.resize(F);
    RowMap<T>(bias_grad.data(), F) = ConstMap<T>(g, N, F).colwise().sum();
  }
  if (grad_input == nullptr) return;
  // Eigen's GEMMs write dx as input_ lays it out, then scatter it back.
  const bool scatter = through_ && !columns;
  Tensor<T>& laid_out_grad = scatter ? gathered_grad_ : *grad_input;
  laid_out_grad.resize(scatter ? gathered_.shape : input.shape);
  T* dx = laid_out_grad.data.data();
  // dx = g w': w's row d, read along its units, is column d of w'.
  for_each_result_block(N, D, F, min_rows, ctx.threads, [&](index_t row, index_t rows,
                                                            index_t col, index_t cols) {
    if (columns) {
      const std::vector<const T*> g_columns = column_pointers(g, N, row, 0, F);
      const std::vector<T*> dx_columns =
          column_pointers(dx, N, row, col, cols, [&](index_t d) { return input_feature(d); });
      column_product<T>(rows, cols, F, g_columns.data(), PointerTo::columns, w + col, D, 1,
                        dx_columns.data(), nullptr, false, false, operand_of<T>(D * F));
    } else {
      gemm(Op::none, Op::transpose, rows, cols, F, g + row, N, w + col, D, dx + row + col * N, N,
           false);
    }
  });
  if (scatter) through_->backward(input, gathered_, gathered_grad_, grad_input, ctx, false);
}

template class Dense<float>;
template class Dense<double>;

}  // namespace lcnn
