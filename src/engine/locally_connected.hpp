// Locally connected 1D/2D layer: a convolution without weight sharing.
#pragma once

#include <vector>

#include "activation.hpp"
#include "layer.hpp"
#include "local_geometry.hpp"
#include "parallel.hpp"

namespace lcnn {

// The tiles of neighbouring positions that LocallyConnected::backward()
// shares out, `down` x `across` of them numbered row by row, in colour
// classes: tile (a, b) is of class (a % row_colours) * col_colours +
// b % col_colours. Tiles that share inputs lie less than row_colours apart
// along the rows and col_colours along the columns, so their classes
// differ.
struct TileGrid {
  index_t down = 1, across = 1, row_colours = 1, col_colours = 1;
  index_t colours() const { return row_colours * col_colours; }
  index_t colour(index_t a, index_t b) const {
    return (a % row_colours) * col_colours + b % col_colours;
  }
  // The number of tiles of class `colour`, and the q-th of them (row by
  // row).
  index_t class_tiles(index_t colour) const;
  index_t class_tile(index_t colour, index_t q) const;
};

// Orders the tiles of `grid` for `workers` threads (parallel_region() with
// share_ends): worker w's share is, class after class, the w-th of
// `workers` runs into which each class's tiles (row by row) are split, the
// runs' sizes rotating from one class to the next so that the shares come
// out even. Even workers take their runs forwards and odd ones backwards:
// neighbouring workers end a class where their runs meet, and start the
// next one where the tiles they wait for were done first. So each share
// holds its tiles class after class, and a tile waits only for tiles of
// earlier classes, earlier in their own shares.
void order_tiles(const TileGrid& grid, int workers, std::vector<index_t>& order,
                 std::vector<index_t>& share_ends);

// Which kernels a layer runs: the direct loops of locally_connected_direct.hpp
// or one GEMM per position. `automatic` picks by direct_path_fits(); tests
// force either to compare them.
enum class LocalKernels { automatic, direct, gemm };

// Whether the GEMM path reads its input as it is rather than from a copy
// with channels inner (LocallyConnected::channels_inner()): when the input
// already lies so along every axis with more than one value, or has one
// channel. With one channel the copy would only swap rows and columns, and
// cost more than it saves (W7's first layer, 28 x 28 x 1 in 3 x 3 windows:
// forward 108 -> 93 microseconds without it; bench/NOTES.md).
bool reads_input_as_is(const LocalGeometry& g);

template <typename T>
class LocallyConnected : public Layer<T> {
 public:
  // `kernel` and `bias` are in lcnn's layout (see LocalGeometry); `bias` is
  // empty when the layer has none.
  LocallyConnected(const LocalGeometry& geometry, Activation activation, std::vector<T> kernel,
                   std::vector<T> bias, LocalKernels kernels = LocalKernels::automatic);

  Shape input_shape() const override { return geometry_.input_shape(); }
  Shape output_shape() const override { return geometry_.output_shape(); }
  void forward(const Tensor<T>& input, Tensor<T>& output, const Context& ctx) override;
  bool forward_from(const DoubleBatch& input, Tensor<T>& output, const Context& ctx) override;
  // On the direct path only, with any activation but softmax (which spans a
  // position's filters), applied run by run on the way into the result. On
  // the GEMM path the stores into R's result, made between the products,
  // cost more than the output's pass of its own (bench/NOTES.md).
  bool writes_result() const override {
    return direct_ && activation_.kind() != Activation::softmax;
  }
  void backward(const Tensor<T>& input, const Tensor<T>& output, const Tensor<T>& grad_output,
                Tensor<T>* grad_input, const Context& ctx, bool through_logits) override;
  std::vector<ParameterBlock<T>>& parameters() override { return parameters_; }
  // Takes the update with the GEMM kernels, position by position; the
  // direct kernels finish no position's gradient before the last.
  bool update_in_backward(ParameterUpdate<T>* update) override;
  Activation activation() const override { return activation_.kind(); }
  bool backward_reads_output(bool through_logits) const override {
    return activation_.gradient_reads_output(through_logits);
  }
  const Tensor<T>* logits() const override { return activation_.logits(); }
  const LocalGeometry& geometry() const { return geometry_; }
  // Agrees with `producer`, the layer whose output is this layer's input
  // and read by nothing else, that the producer lays its output out with
  // channels inner as channels_inner() would copy it, and reads its
  // output's gradient so laid out; this layer then reads that input as it
  // is, without the copy, and lays out its input gradient so too. Only
  // where this layer would copy its input, both run the GEMM path with
  // channels_last, and the producer's activation takes each value on its
  // own (not softmax). Returns whether they agreed.
  bool read_channels_inner_from(LocallyConnected<T>& producer);
  // Whether this layer can lay its output out with channels inner: on the
  // GEMM path with channels_last, and an activation other than softmax.
  bool can_lay_output_channels_inner() const;
  // Lays the output out so (as for read_channels_inner_from()) for a reader
  // that finds each feature through channels_inner_offset(): a dense layer
  // reading through a flatten, whose order it then is (Network).
  void lay_output_channels_inner() { output_channels_inner_ = true; }
  // Whether forward() lays out the output with channels inner.
  bool output_channels_inner() const { return output_channels_inner_; }
  // Where output feature `feature`, numbered as the output's own layout
  // orders a sample's values, lies in an output laid out with channels
  // inner.
  index_t channels_inner_offset(index_t feature) const;

 private:
  // forward()'s products and activation on the GEMM path, from the input
  // `x` laid out with channels inner (strides x_st), B samples.
  void forward_positions(const T* x, const TensorStrides& x_st, index_t B, Tensor<T>& output,
                         const Context& ctx);
  // Points columns[l] at column l of position p's B x (K*C) patch matrix
  // within x (the input or its gradient): the B values of one input
  // feature; null where the tap falls outside the input.
  template <typename Pointer>
  void patch_columns(Pointer x, index_t B, index_t p, const TensorStrides& st,
                     Pointer* columns) const;
  // The input as forward() and backward() read it: `input` itself, `st`
  // unchanged, where reads_input_as_is(), else a copy of it with channels
  // and columns next to each other (strides 1, C and C * columns), `st` set
  // to match. A patch's columns then lie in one contiguous run per kernel
  // row, which the forward column product reads in place instead of
  // copying them together for every position (each input value once per
  // position that covers it; W4's patches came to 1 GB of copies a forward
  // pass). With `recorded`, the copy the last recording forward() made of
  // this same input is returned as it is.
  const T* channels_inner(const Tensor<T>& input, TensorStrides& st, int threads, bool recorded);
  // A thread's room for one position's column pointers and (with update_)
  // its kernel and bias gradients, in backward().
  struct PositionScratch {
    std::vector<const T*> patch_columns, grad_columns;
    std::vector<T*> kernel_grad_columns, input_grad_columns;
    std::vector<T> kernel_grad, bias_grad;
    Buffer<T> grad_pre;  // the position's gradient before the activation
  };
  // Where position (r, c)'s B x F output values lie in an output-shaped
  // tensor of B samples: filter f's B values from first + f * stride on,
  // so in `count` runs of `length` values, `stride` apart (F runs of B, or
  // one run of B * F where stride is B).
  struct OutputRuns {
    index_t first, stride, count, length;
  };
  OutputRuns output_runs(index_t B, index_t r, index_t c) const;
  // Asks for position (r, c)'s values of `grad` and `output` to come into
  // the cache while the position before it in backward() computes, for an
  // activation differentiated position by position.
  void prefetch_position(const Tensor<T>& grad, const Tensor<T>& output, index_t B, index_t r,
                         index_t c) const;
  // Position (r, c)'s share of backward(); x and x_st are the input as
  // channels_inner() gives it. `grad` is the gradient before the
  // activation, or with `output` not null the gradient of that output,
  // which the activation's gradient turns into the former first.
  void backward_position(const T* x, const TensorStrides& x_st, index_t B, const Tensor<T>& grad,
                         const Tensor<T>* output, Tensor<T>* grad_input, index_t r, index_t c,
                         PositionScratch& scratch);

  // The strides of backward()'s input gradient: the input's, with channels
  // inner where the producer lays it out so.
  TensorStrides input_gradient_strides() const;

  LocalGeometry geometry_;
  bool direct_;  // runs the direct kernels rather than GEMMs
  // Set by read_channels_inner_from(), on the producer and on the reader.
  bool output_channels_inner_ = false, input_channels_inner_ = false;
  OutputActivation<T> activation_;
  std::vector<ParameterBlock<T>> parameters_;  // kernel, then bias if any
  Tensor<T> grad_pre_;
  Tensor<T> channels_inner_;  // channels_inner()'s copy, kept across calls
  // Whether channels_inner_ holds the input of the last recording forward()
  // (backward() then reads it instead of copying the input again); a
  // forward() that does not record may overwrite it.
  bool channels_inner_recorded_ = false;
  // The optimizer's step, applied to each position's weights in backward()
  // once their gradient is final; null when the caller updates them.
  ParameterUpdate<T>* update_ = nullptr;
  // backward()'s scratch, one per thread, kept across calls: a backward()
  // after one with as large a batch on as many threads allocates none.
  std::vector<PositionScratch> scratch_;
  // backward()'s order of its tiles (order_tiles()), the ends of the
  // threads' shares of them, and which are finished; kept across calls.
  std::vector<index_t> tile_order_, share_ends_;
  ItemsDone tiles_done_;
};

}  // namespace lcnn
