#include "locally_connected.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "convert.hpp"
#include "eigen_maps.hpp"
#include "gemm.hpp"
#include "locally_connected_direct.hpp"
#include "parallel.hpp"

namespace lcnn {
namespace {

// Below this many tiles of neighbouring positions, backward() takes the
// positions one by one: a few large tiles in colour classes would leave
// threads idle (see there).
constexpr index_t kMinTiles = 16;

// Values per block of backward()'s parallel zeroing of the input gradient.
constexpr index_t kZeroBlock = index_t(1) << 14;

index_t ceil_div(index_t a, index_t b) { return (a + b - 1) / b; }

}  // namespace

index_t TileGrid::class_tiles(index_t colour) const {
  return ceil_div(down - colour / col_colours, row_colours) *
         ceil_div(across - colour % col_colours, col_colours);
}

index_t TileGrid::class_tile(index_t colour, index_t q) const {
  const index_t cols = ceil_div(across - colour % col_colours, col_colours);
  const index_t a = colour / col_colours + q / cols * row_colours;
  const index_t b = colour % col_colours + q % cols * col_colours;
  return a * across + b;
}

void order_tiles(const TileGrid& grid, int workers, std::vector<index_t>& order,
                 std::vector<index_t>& share_ends) {
  // The size of worker w's run of a class of n tiles: the k-th of the
  // workers' even split, k rotating with the class.
  const auto run_size = [&](index_t n, index_t colour, int w) {
    const index_t k = (w + colour) % workers;
    return n * (k + 1) / workers - n * k / workers;
  };
  share_ends.assign(workers, 0);
  for (index_t colour = 0; colour < grid.colours(); ++colour) {
    const index_t n = grid.class_tiles(colour);
    for (int w = 0; w < workers; ++w) share_ends[w] += run_size(n, colour, w);
  }
  // Each worker's share starts where the one before ends; the ends count
  // up from those starts as the tiles are placed.
  index_t start = 0;
  for (int w = 0; w < workers; ++w) {
    const index_t size = share_ends[w];
    share_ends[w] = start;
    start += size;
  }
  order.resize(start);
  for (index_t colour = 0; colour < grid.colours(); ++colour) {
    const index_t n = grid.class_tiles(colour);
    index_t first = 0;
    for (int w = 0; w < workers; ++w) {
      const index_t size = run_size(n, colour, w);
      for (index_t i = 0; i < size; ++i) {
        const index_t q = w % 2 == 0 ? first + i : first + size - 1 - i;
        order[share_ends[w]++] = grid.class_tile(colour, q);
      }
      first += size;
    }
  }
}

template <typename T>
LocallyConnected<T>::LocallyConnected(const LocalGeometry& geometry, Activation activation,
                                      std::vector<T> kernel, std::vector<T> bias,
                                      LocalKernels kernels)
    : geometry_(geometry),
      direct_(kernels == LocalKernels::direct ||
              (kernels == LocalKernels::automatic && direct_path_fits(geometry))),
      activation_(activation) {
  geometry_.validate();
  if (static_cast<index_t>(kernel.size()) != geometry_.kernel_size()) {
    throw std::invalid_argument("locally connected kernel has " + std::to_string(kernel.size()) +
                                " values, expected " + std::to_string(geometry_.kernel_size()));
  }
  if (!bias.empty() && static_cast<index_t>(bias.size()) != geometry_.bias_size()) {
    throw std::invalid_argument("locally connected bias has " + std::to_string(bias.size()) +
                                " values, expected " + std::to_string(geometry_.bias_size()));
  }
  parameters_.push_back({"kernel", std::move(kernel), {}});
  if (!bias.empty()) parameters_.push_back({"bias", std::move(bias), {}});
}

template <typename T>
template <typename Pointer>
void LocallyConnected<T>::patch_columns(Pointer x, index_t B, index_t p, const TensorStrides& st,
                                        Pointer* columns) const {
  const LocalGeometry& g = geometry_;
  const index_t r = p / g.cols.output, c = p % g.cols.output;
  const index_t k1 = g.cols.kernel, C = g.channels;
  const index_t channel_step = B * st.in_channel;
  for (index_t i = 0; i < g.rows.kernel; ++i) {
    const index_t ir = g.rows.first(r) + i;
    for (index_t j = 0; j < k1; ++j) {
      const index_t ic = g.cols.first(c) + j;
      Pointer* const tap = columns + (i * k1 + j) * C;
      if (ir < 0 || ir >= g.rows.input || ic < 0 || ic >= g.cols.input) {
        std::fill(tap, tap + C, nullptr);
        continue;
      }
      Pointer column = x + B * (ir * st.in_row + ic * st.in_col);
      for (index_t ci = 0; ci < C; ++ci, column += channel_step) tap[ci] = column;
    }
  }
}

namespace {

// The strides of a channels-inner copy (LocallyConnected::channels_inner()).
TensorStrides channels_inner_strides(const LocalGeometry& g, TensorStrides st) {
  st.in_channel = 1;
  st.in_col = g.channels;
  st.in_row = g.channels * g.cols.input;
  return st;
}

// Copies (converting) the B samples of each input value (row, column,
// channel) of `x`, laid out with strides `from` and found at
// x + run * (offset in units of the batch), into `to` with channels inner.
// By tiles of kTile rows x kTile channels of one column, so that reads and
// writes both come in runs of neighbours: with channels_last, the input's
// rows lie next to each other and its channels a feature map apart, the
// copy's the other way round (one run of B samples at a time, this copy
// took as long as a sequential conversion of the input and a copy after
// it together; bench/NOTES.md).
template <typename From, typename T>
void copy_channels_inner(const LocalGeometry& g, const From* x, index_t run,
                         const TensorStrides& from, index_t B, T* to, int threads) {
  constexpr index_t kTile = 8;
  const TensorStrides st = channels_inner_strides(g, from);
  const index_t H = g.rows.input, row_tiles = (H + kTile - 1) / kTile;
  parallel_region(g.cols.input * row_tiles, threads, [&](WorkItems& items) {
    for (index_t item; items.next(item);) {
      const index_t c = item / row_tiles, r0 = item % row_tiles * kTile;
      const index_t r1 = std::min(H, r0 + kTile);
      for (index_t ch0 = 0; ch0 < g.channels; ch0 += kTile) {
        const index_t ch1 = std::min(g.channels, ch0 + kTile);
        for (index_t r = r0; r < r1; ++r) {
          for (index_t ch = ch0; ch < ch1; ++ch) {
            convert_values(x + run * (r * from.in_row + c * from.in_col + ch * from.in_channel),
                           to + B * (r * st.in_row + c * st.in_col + ch), B);
          }
        }
      }
    }
  });
}

}  // namespace

bool reads_input_as_is(const LocalGeometry& g) {
  if (g.channels == 1) return true;
  const TensorStrides st = g.strides(), inner = channels_inner_strides(g, st);
  return st.in_channel == inner.in_channel && (g.rows.input == 1 || st.in_row == inner.in_row) &&
         (g.cols.input == 1 || st.in_col == inner.in_col);
}

template <typename T>
bool LocallyConnected<T>::read_channels_inner_from(LocallyConnected<T>& producer) {
  const bool agree = !direct_ && !reads_input_as_is(geometry_) &&
                     geometry_.format == DataFormat::channels_last &&
                     producer.output_shape() == input_shape() &&
                     producer.can_lay_output_channels_inner();
  producer.output_channels_inner_ = input_channels_inner_ = agree;
  return agree;
}

template <typename T>
bool LocallyConnected<T>::can_lay_output_channels_inner() const {
  return !direct_ && geometry_.format == DataFormat::channels_last &&
         activation_.kind() != Activation::softmax;
}

template <typename T>
index_t LocallyConnected<T>::channels_inner_offset(index_t feature) const {
  // channels_last's own order: rows, then columns, then filters.
  const index_t OR = geometry_.rows.output, OC = geometry_.cols.output;
  const index_t r = feature % OR, c = feature / OR % OC, f = feature / (OR * OC);
  return f + geometry_.filters * (c + OC * r);
}

template <typename T>
TensorStrides LocallyConnected<T>::input_gradient_strides() const {
  const TensorStrides st = geometry_.strides();
  return input_channels_inner_ ? channels_inner_strides(geometry_, st) : st;
}

template <typename T>
const T* LocallyConnected<T>::channels_inner(const Tensor<T>& input, TensorStrides& st,
                                             int threads, bool recorded) {
  if (reads_input_as_is(geometry_)) return input.data.data();
  const TensorStrides from = st;
  st = channels_inner_strides(geometry_, from);
  if (input_channels_inner_) return input.data.data();
  if (recorded && channels_inner_.shape == input.shape) return channels_inner_.data.data();
  channels_inner_.resize(input.shape);
  copy_channels_inner(geometry_, input.data.data(), input.batch(), from, input.batch(),
                      channels_inner_.data.data(), threads);
  return channels_inner_.data.data();
}

// For each output position p (in parallel): one column product (gemm.hpp)
// reads the position's patch columns straight from the input `x`, laid out
// with channels inner (channels_inner(); no zero columns for padding),
// starts from the bias, streams the position's (K*C) x F weight block once
// and writes the B x F outputs straight into the output tensor. No
// batch-wide patch tensor.
template <typename T>
void LocallyConnected<T>::forward_positions(const T* x, const TensorStrides& x_st, index_t B,
                                            Tensor<T>& output, const Context& ctx) {
  const LocalGeometry& g = geometry_;
  const index_t OC = g.cols.output, F = g.filters, KC = g.patch();
  const T* kernel = parameters_[0].values.data();
  const T* bias = parameters_.size() > 1 ? parameters_[1].values.data() : nullptr;
  // relu, stored by the products as they finish each value, costs no pass
  // of its own over the output (a third of W7's first layer's forward).
  const bool rectify = activation_.kind() == Activation::relu;
  parallel_region(g.positions(), ctx.threads, [&](WorkItems& items) {
    std::vector<const T*> patch(KC);
    std::vector<T*> out(F);
    for (index_t p; items.next(p);) {
      patch_columns(x, B, p, x_st, patch.data());
      const OutputRuns runs = output_runs(B, p / OC, p % OC);
      for (index_t f = 0; f < F; ++f) out[f] = output.data.data() + runs.first + f * runs.stride;
      column_product<T>(B, F, KC, patch.data(), PointerTo::columns, kernel + p * F * KC, 1, KC,
                        out.data(), bias != nullptr ? bias + p * F : nullptr, false, rectify);
    }
  });
  if (!rectify) activation_.apply(output, ctx.record, ctx.threads);
}

template <typename T>
void LocallyConnected<T>::forward(const Tensor<T>& input, Tensor<T>& output, const Context& ctx) {
  const LocalGeometry& g = geometry_;
  if (input.shape != g.input_shape().with_batch(input.batch())) {
    throw std::invalid_argument("locally connected layer expected input " +
                                g.input_shape().to_string() + " per sample, got " +
                                input.shape.to_string());
  }
  const index_t B = input.batch();
  // predict() hands ctx.result only to the direct path (writes_result()).
  if (ctx.result == nullptr) output.resize(g.output_shape().with_batch(B));
  if (B == 0) return;
  if (direct_) {
    const T* bias = parameters_.size() > 1 ? parameters_[1].values.data() : nullptr;
    const DirectIO<T> io{input.data.data(), output.data.data(), ctx.result, activation_.kind()};
    direct_forward(g, B, parameters_[0].values.data(), bias, io, ctx.threads);
    if (ctx.result == nullptr) activation_.apply(output, ctx.record, ctx.threads);
    return;
  }
  TensorStrides x_st = g.strides();
  const T* x = channels_inner(input, x_st, ctx.threads, false);
  channels_inner_recorded_ = ctx.record;
  forward_positions(x, x_st, B, output, ctx);
}

// The GEMM path's channels-inner copy made straight from R's doubles. The
// direct kernels read the input as it is, so they take forward().
template <typename T>
bool LocallyConnected<T>::forward_from(const DoubleBatch& input, Tensor<T>& output,
                                       const Context& ctx) {
  if (direct_ || ctx.record) return false;
  const LocalGeometry& g = geometry_;
  const index_t B = input.count;
  output.resize(g.output_shape().with_batch(B));
  if (B == 0) return true;
  const TensorStrides from = g.strides();
  channels_inner_.resize(g.input_shape().with_batch(B));
  copy_channels_inner(g, input.data, input.stride, from, B, channels_inner_.data.data(),
                      ctx.threads);
  channels_inner_recorded_ = false;
  forward_positions(channels_inner_.data.data(), channels_inner_strides(g, from), B, output,
                    ctx);
  return true;
}

template <typename T>
typename LocallyConnected<T>::OutputRuns LocallyConnected<T>::output_runs(index_t B, index_t r,
                                                                         index_t c) const {
  const LocalGeometry& g = geometry_;
  // With channels inner for the next layer, positions go row by row, each
  // one run of its filters (channels_inner_strides() of the next layer).
  if (output_channels_inner_) return {B * g.filters * (c + g.cols.output * r), B, 1, B * g.filters};
  const TensorStrides st = g.strides();
  const index_t stride = B * st.out_filter, count = stride == B ? 1 : g.filters;
  return {B * st.out_position * (r + g.rows.output * c), stride, count,
          B * g.filters / count};
}

// The runs of a position's output and output gradient lie a feature map
// apart, a few lines each, too short for the hardware prefetcher: read on
// demand by an activation's gradient, they kept relu's gradient waiting on
// its loads for most of its time. Without an activation to differentiate,
// the column products fetch the gradient ahead themselves, and fetching
// it here too made a linear layer's backward pass slower (bench/NOTES.md).
template <typename T>
void LocallyConnected<T>::prefetch_position(const Tensor<T>& grad, const Tensor<T>& output,
                                            index_t B, index_t r, index_t c) const {
  constexpr index_t line = 64 / index_t(sizeof(T));
  const OutputRuns runs = output_runs(B, r, c);
  for (index_t i = 0; i < runs.count; ++i) {
    const index_t start = runs.first + i * runs.stride;
    for (index_t v = start; v < start + runs.length; v += line) {
      __builtin_prefetch(grad.data.data() + v);
      __builtin_prefetch(output.data.data() + v);
    }
  }
}

// Position (r, c)'s weight and bias gradients, and its terms of the input
// gradient.
template <typename T>
void LocallyConnected<T>::backward_position(const T* x, const TensorStrides& x_st, index_t B,
                                            const Tensor<T>& grad, const Tensor<T>* output,
                                            Tensor<T>* grad_input, index_t r, index_t c,
                                            PositionScratch& scratch) {
  const LocalGeometry& g = geometry_;
  const TensorStrides st = input_gradient_strides();
  const index_t F = g.filters, KC = g.patch();
  const index_t p = r * g.cols.output + c;
  const OutputRuns runs = output_runs(B, r, c);
  const T* grad_data = grad.data.data() + runs.first;
  index_t grad_stride = runs.stride;
  if (output != nullptr) {
    // The activation's gradient of the position's runs, filter f's values
    // at f * B in the scratch.
    for (index_t i = 0; i < runs.count; ++i) {
      activation_.gradient_run(*output, grad, runs.first + i * runs.stride, runs.length,
                               scratch.grad_pre.data() + i * runs.length);
    }
    grad_data = scratch.grad_pre.data();
    grad_stride = B;
  }
  // dW_p = X_p' G_p: a column product takes X_p' by rows (each patch
  // column is one), transposing it in registers block by block as it goes;
  // for batches of up to 128 samples it writes each gradient value once.
  // Measured faster than a GEMM per kernel row on every shape tried but one
  // filter over long patches (bench/NOTES.md).
  patch_columns(x, B, p, x_st, scratch.patch_columns.data());
  T* const kernel_grad =
      update_ ? scratch.kernel_grad.data() : parameters_[0].gradient.data() + p * F * KC;
  for (index_t f = 0; f < F; ++f) scratch.kernel_grad_columns[f] = kernel_grad + f * KC;
  column_product<T>(KC, F, B, scratch.patch_columns.data(), PointerTo::rows, grad_data, 1,
                    grad_stride, scratch.kernel_grad_columns.data(), nullptr, false);
  T* bias_grad = nullptr;
  if (parameters_.size() > 1) {
    bias_grad = update_ ? scratch.bias_grad.data() : parameters_[1].gradient.data() + p * F;
    ConstStridedMap<T> grad(grad_data, B, F, Eigen::OuterStride<>(grad_stride));
    RowMap<T>(bias_grad, F) = grad.colwise().sum();
  }
  if (grad_input != nullptr) {
    for (index_t f = 0; f < F; ++f) scratch.grad_columns[f] = grad_data + f * grad_stride;
    patch_columns(grad_input->data.data(), B, p, st, scratch.input_grad_columns.data());
    column_product<T>(B, KC, F, scratch.grad_columns.data(), PointerTo::columns,
                      parameters_[0].values.data() + p * F * KC, KC, 1,
                      scratch.input_grad_columns.data(), nullptr, true);
  }
  // After the input gradient, which takes the weights before the update.
  if (update_ != nullptr) {
    update_->apply(0, p * F * KC, F * KC, kernel_grad);
    if (bias_grad != nullptr) update_->apply(1, p * F, F, bias_grad);
  }
}

template <typename T>
bool LocallyConnected<T>::update_in_backward(ParameterUpdate<T>* update) {
  update_ = direct_ ? nullptr : update;
  if (update_ != nullptr) {
    for (ParameterBlock<T>& block : parameters_) std::vector<T>().swap(block.gradient);
  }
  return update_ != nullptr;
}

// Per position p: dW_p = X_p' G_p (zero at unconnected taps, whose patch
// columns are zero), db_p = column sums of G_p, and the input gradient
// G_p W_p' added straight onto p's window by a column product. Windows of
// positions whose rows differ by at least ceil(k0 / s0) (or columns by
// ceil(k1 / s1)) do not overlap, so positions go in tiles and colour
// classes (see below), and a tile runs after the tiles of earlier classes
// that overlap it: no two threads add to the same input at once, and every
// input receives its terms in the same order whatever the thread count. With update_, each
// position's gradients go to the thread's scratch and update_ applies the
// optimizer's step to the position's weights there and then: the gradients
// are never written out, and the weights are read and written once more
// while in cache, instead of in a pass of their own over the whole kernel.
template <typename T>
void LocallyConnected<T>::backward(const Tensor<T>& input, const Tensor<T>& output,
                                   const Tensor<T>& grad_output, Tensor<T>* grad_input,
                                   const Context& ctx, bool through_logits) {
  const LocalGeometry& g = geometry_;
  const index_t B = input.batch();
  // On the GEMM path an activation that takes each value on its own is
  // differentiated position by position as backward_position() reads the
  // gradient, into the thread's scratch, instead of in a pass of its own
  // that writes a tensor as large as the output and reads it back (W7's
  // first layer: 692 KB a step).
  const bool by_position = !direct_ && activation_.gradient_by_value(through_logits);
  const Tensor<T>& grad =
      by_position ? grad_output
                  : activation_.pre_gradient(output, grad_output, through_logits, grad_pre_,
                                             ctx.threads);
  const index_t OR = g.rows.output, OC = g.cols.output, F = g.filters, KC = g.patch();

  ParameterBlock<T>& kernel = parameters_[0];
  // Without update_, the gradients are written whole below.
  if (update_ == nullptr) {
    for (ParameterBlock<T>& block : parameters_) block.gradient.resize(block.values.size());
  }
  if (direct_) {
    for (ParameterBlock<T>& block : parameters_) {
      std::fill(block.gradient.begin(), block.gradient.end(), T(0));
    }
    direct_parameter_gradients(g, B, input.data.data(), grad.data.data(),
                               kernel.gradient.data(),
                               parameters_.size() > 1 ? parameters_[1].gradient.data() : nullptr,
                               ctx.threads);
    if (grad_input == nullptr) return;
    grad_input->resize(input.shape);
    direct_input_gradient(g, B, grad.data.data(), kernel.values.data(),
                          grad_input->data.data(), ctx.threads);
    return;
  }
  TensorStrides x_st = g.strides();
  const T* x = channels_inner(input, x_st, ctx.threads, channels_inner_recorded_);
  if (grad_input != nullptr) {
    // Zeroed in parallel: on one thread, with the other waiting, W7's
    // second layer's 692 KB cost its backward pass 300 -> 285 microseconds
    // on two threads (bench/NOTES.md).
    grad_input->resize(input.shape);
    T* const zeroed = grad_input->data.data();
    for_each_block(input.shape.size(), kZeroBlock, ctx.threads, [&](index_t start, index_t count) {
      std::fill(zeroed + start, zeroed + start + count, T(0));
    });
  }
  // Positions `reach` apart along an axis never share an input. Tiles of
  // positions, each processed in order by one thread, span `reach` along
  // each axis (neighbours share most of their window, so the input and its
  // gradient stay in cache), or one position where that would leave fewer
  // than kMinTiles tiles to share out. With an input gradient, tiles go in
  // colour classes along each axis such that tiles of one class lie at least
  // `reach` positions apart, class after class (order_tiles()). A tile
  // waits for the tiles of earlier classes that share inputs with it (less
  // than a class's spacing away along both axes), not every tile for the
  // whole class before it: W7's second layer split each class of 9
  // positions 5 : 4 over two threads, and the threads waited 50
  // microseconds a step at the classes' ends (bench/NOTES.md).
  // Sized whether or not update_ is set, so that a step with the update
  // allocates nothing here after one without it.
  if (scratch_.size() < static_cast<std::size_t>(ctx.threads)) scratch_.resize(ctx.threads);
  for (int w = 0; w < ctx.threads; ++w) {
    PositionScratch& scratch = scratch_[w];
    scratch.patch_columns.resize(KC);
    scratch.grad_columns.resize(F);
    scratch.kernel_grad_columns.resize(F);
    scratch.input_grad_columns.resize(KC);
    scratch.kernel_grad.resize(F * KC);
    scratch.bias_grad.resize(F);
    scratch.grad_pre.resize(B * F);
  }
  const index_t row_reach = ceil_div(g.rows.kernel, g.rows.stride);
  const index_t col_reach = ceil_div(g.cols.kernel, g.cols.stride);
  const bool span_reach = ceil_div(OR, row_reach) * ceil_div(OC, col_reach) >= kMinTiles;
  const index_t tile_rows = span_reach ? std::min(OR, row_reach) : 1;
  const index_t tile_cols = span_reach ? std::min(OC, col_reach) : 1;
  TileGrid grid;
  grid.down = ceil_div(OR, tile_rows);
  grid.across = ceil_div(OC, tile_cols);
  grid.row_colours =
      grad_input ? std::min(grid.down, 1 + ceil_div(row_reach - 1, tile_rows)) : 1;
  grid.col_colours =
      grad_input ? std::min(grid.across, 1 + ceil_div(col_reach - 1, tile_cols)) : 1;
  const index_t tiles = grid.down * grid.across;
  const bool ordered = grid.colours() > 1;
  // How many tiles apart along each axis a tile's inputs may be shared.
  const index_t row_span = grid.row_colours - 1, col_span = grid.col_colours - 1;
  if (ordered) {
    order_tiles(grid, region_workers(tiles, ctx.threads), tile_order_, share_ends_);
    tiles_done_.reset(tiles);
  }

  const Tensor<T>* const activated = by_position ? &output : nullptr;
  const auto run_tile = [&](index_t tile, PositionScratch& scratch) {
    const index_t tile_r = tile / grid.across * tile_rows;
    const index_t tile_c = tile % grid.across * tile_cols;
    const index_t r1 = std::min(OR, tile_r + tile_rows);
    const index_t c1 = std::min(OC, tile_c + tile_cols);
    for (index_t r = tile_r; r < r1; ++r) {
      for (index_t c = tile_c; c < c1; ++c) {
        if (activated != nullptr) {
          if (c + 1 < c1) {
            prefetch_position(grad, *activated, B, r, c + 1);
          } else if (r + 1 < r1) {
            prefetch_position(grad, *activated, B, r + 1, tile_c);
          }
        }
        backward_position(x, x_st, B, grad, activated, grad_input, r, c, scratch);
      }
    }
  };
  parallel_region(
      tiles, ctx.threads,
      [&](WorkItems& items) {
        PositionScratch& scratch = scratch_[items.worker()];
        for (index_t item; items.next(item);) {
          if (!ordered) {
            run_tile(item, scratch);
            continue;
          }
          const index_t tile = tile_order_[item];
          const index_t ta = tile / grid.across, tb = tile % grid.across;
          const index_t colour = grid.colour(ta, tb);
          for (index_t a = std::max<index_t>(0, ta - row_span);
               a <= std::min(grid.down - 1, ta + row_span); ++a) {
            for (index_t b = std::max<index_t>(0, tb - col_span);
                 b <= std::min(grid.across - 1, tb + col_span); ++b) {
              if (grid.colour(a, b) < colour) tiles_done_.wait(a * grid.across + b);
            }
          }
          const ItemsDone::Finish finish(tiles_done_, tile);
          run_tile(tile, scratch);
        }
      },
      ordered ? share_ends_.data() : nullptr);
}

template class LocallyConnected<float>;
template class LocallyConnected<double>;

}  // namespace lcnn
