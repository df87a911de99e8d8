// Pooling (TensorFlow's "same" windows, max ties, averages over the taps
// inside the input) and the gathers behind flatten, reshape, permute,
// padding and cropping: forward and backward on small hand-checked cases.
#include <ostream>
#include <stdexcept>
#include <vector>

#include "check.hpp"
#include "flatten.hpp"
#include "local_geometry.hpp"
#include "pooling.hpp"
#include "reference.hpp"
#include "reshaping.hpp"

using namespace lcnn;

namespace {

// For CHECK_EQ's messages.
template <typename T>
std::ostream& operator<<(std::ostream& os, const std::vector<T>& v) {
  os << "{";
  for (std::size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
  return os << "}";
}

// A 1D pooling geometry on (L, C) samples, channels_last.
LocalGeometry pool_1d(index_t length, index_t channels, index_t pool, index_t stride,
                      Padding padding) {
  LocalGeometry g;
  g.rows = AxisWindow::make(length, pool, stride, padding, SamePadding::convolution);
  g.cols = AxisWindow::make(1, 1, 1, Padding::valid);
  g.channels = g.filters = channels;
  g.one_d = true;
  return g;
}

Tensor<double> batch_of(const Shape& sample, index_t batch, std::vector<double> values) {
  Tensor<double> t;
  t.resize(sample.with_batch(batch));
  ref::assign(t.data, std::move(values));
  return t;
}

std::vector<double> backward_of(Layer<double>& layer, const Tensor<double>& in,
                                const std::vector<double>& grad_values, int threads = 1) {
  Context ctx;
  ctx.threads = threads;
  Tensor<double> out, grad_in;
  layer.forward(in, out, ctx);
  Tensor<double> grad_out = batch_of(layer.output_shape(), in.batch(), grad_values);
  layer.backward(in, out, grad_out, &grad_in, ctx, false);
  return ref::values_of(grad_in.data);
}

std::vector<double> forward_of(Layer<double>& layer, const Tensor<double>& in, int threads = 1) {
  Context ctx;
  ctx.threads = threads;
  Tensor<double> out;
  layer.forward(in, out, ctx);
  return ref::values_of(out.data);
}

}  // namespace

TEST(convolution_same_padding_puts_the_smaller_half_before) {
  // out = ceil(n / s); total = max((out - 1) * s + k - n, 0); before = total / 2.
  const AxisWindow a = AxisWindow::make(5, 4, 2, Padding::same, SamePadding::convolution);
  CHECK_EQ(a.output, 3);
  CHECK_EQ(a.first(0), -1);  // total 3: 1 before, 2 after
  CHECK_EQ(a.tap_end(2), 2);  // the last window holds inputs 3 and 4, then padding
  CHECK_EQ(AxisWindow::make(5, 2, 1, Padding::same, SamePadding::convolution).first(0), 0);
  CHECK_EQ(AxisWindow::make(6, 3, 2, Padding::same, SamePadding::convolution).first(0), 0);
  CHECK_EQ(AxisWindow::make(7, 1, 2, Padding::same, SamePadding::convolution).first(3), 6);
  CHECK_EQ(AxisWindow::make(4, 3, 1, Padding::same, SamePadding::convolution).first(0), -1);
  // The locally connected rule differs for even kernels and strides > 1.
  CHECK_EQ(AxisWindow::make(5, 2, 1, Padding::same).first(0), -1);
  // "valid" is the same for both rules.
  CHECK_EQ(AxisWindow::make(9, 3, 2, Padding::valid, SamePadding::convolution).output, 4);
  CHECK(parse_same_padding("convolution") == SamePadding::convolution);
  CHECK_THROWS(parse_same_padding("conv"), std::invalid_argument);
}

TEST(pooling_1d_same_max_and_average) {
  // x = 1..5, k = 4, s = 2, same: windows [-1, 3), [1, 5), [3, 7).
  const LocalGeometry g = pool_1d(5, 1, 4, 2, Padding::same);
  const Tensor<double> x = batch_of(g.input_shape(), 1, {1, 2, 3, 4, 5});
  Pooling<double> max_pool(g, PoolMode::max, g.output_shape());
  Pooling<double> avg_pool(g, PoolMode::average, g.output_shape());
  const std::vector<double> maxima = forward_of(max_pool, x);
  const std::vector<double> means = forward_of(avg_pool, x);
  CHECK_EQ(maxima, (std::vector<double>{3, 5, 5}));
  CHECK_NEAR(means[0], 2.0, 1e-15);
  CHECK_NEAR(means[1], 3.5, 1e-15);
  CHECK_NEAR(means[2], 4.5, 1e-15);
  // The average's gradient spreads over the taps inside the input.
  const std::vector<double> grad = backward_of(avg_pool, x, {3, 4, 2});
  CHECK_NEAR(grad[0], 1.0, 1e-15);
  CHECK_NEAR(grad[1], 1.0 + 1.0, 1e-15);
  CHECK_NEAR(grad[2], 1.0 + 1.0, 1e-15);
  CHECK_NEAR(grad[3], 1.0 + 1.0, 1e-15);
  CHECK_NEAR(grad[4], 1.0 + 1.0, 1e-15);
}

TEST(max_pooling_gradient_goes_to_the_first_maximum) {
  // Two samples (batch is the fastest axis): sample 0 = 2 2 1 2, sample 1 = 0 3 3 3.
  const LocalGeometry g = pool_1d(4, 1, 3, 1, Padding::valid);
  const Tensor<double> x = batch_of(g.input_shape(), 2, {2, 0, 2, 3, 1, 3, 2, 3});
  Pooling<double> first(g, PoolMode::max, g.output_shape());
  const std::vector<double> grad = backward_of(first, x, {1, 10, 100, 1000});
  // Windows [0, 3) and [1, 4): sample 0 -> taps 0 and 1; sample 1 -> taps 1 and 1.
  CHECK_EQ(grad, (std::vector<double>{1, 0, 100, 10 + 1000, 0, 0, 0, 0}));
  Pooling<double> split(g, PoolMode::max, g.output_shape(), MaxTies::split);
  const std::vector<double> shared = backward_of(split, x, {1, 10, 100, 1000});
  CHECK_NEAR(shared[0], 0.5, 1e-15);                  // x0 = 2 ties with x1 = 2 in window 0
  CHECK_NEAR(shared[2], 0.5 + 100.0 / 2, 1e-15);      // x1: both windows
  CHECK_NEAR(shared[3], 10.0 / 2 + 1000.0 / 3, 1e-12);
  CHECK_NEAR(shared[6], 100.0 / 2, 1e-15);            // x3 = 2 ties in window 1
  CHECK_NEAR(shared[5], 10.0 / 2 + 1000.0 / 3, 1e-12);
  CHECK_NEAR(shared[7], 1000.0 / 3, 1e-12);
}

TEST(max_pooling_2d_ties_break_in_row_major_order) {
  // One 2x2 window over [[0, 5], [5, 5]] (channels_last, B = 1, C = 1).
  LocalGeometry g;
  g.rows = AxisWindow::make(2, 2, 2, Padding::valid, SamePadding::convolution);
  g.cols = AxisWindow::make(2, 2, 2, Padding::valid, SamePadding::convolution);
  g.channels = g.filters = 1;
  // Column-major (row fastest): x[0,0] = 0, x[1,0] = 5, x[0,1] = 5, x[1,1] = 5.
  const Tensor<double> x = batch_of(g.input_shape(), 1, {0, 5, 5, 5});
  Pooling<double> pool(g, PoolMode::max, Shape{{1}});
  CHECK_EQ(backward_of(pool, x, {7}), (std::vector<double>{0, 0, 7, 0}));  // x[0, 1]
}

TEST(pooling_channels_first_and_threads) {
  // 2D, channels_first (C, H, W) = (3, 5, 4), pool 3x2, strides 2x1, same;
  // 300 samples span two sample blocks. Results are identical for 1 and 3
  // threads, and channels_first equals channels_last on transposed data.
  const index_t B = 300, C = 3, H = 5, W = 4;
  LocalGeometry last;
  last.rows = AxisWindow::make(H, 3, 2, Padding::same, SamePadding::convolution);
  last.cols = AxisWindow::make(W, 2, 1, Padding::same, SamePadding::convolution);
  last.channels = last.filters = C;
  LocalGeometry first = last;
  first.format = DataFormat::channels_first;
  std::vector<double> x_last(B * H * W * C), x_first(x_last.size());
  for (index_t b = 0; b < B; ++b)
    for (index_t i = 0; i < H; ++i)
      for (index_t j = 0; j < W; ++j)
        for (index_t c = 0; c < C; ++c) {
          const double v = static_cast<double>((b * 7 + i * 5 + j * 3 + c * 11) % 13);
          x_last[b + B * (i + H * (j + W * c))] = v;
          x_first[b + B * (c + C * (i + H * j))] = v;
        }
  const index_t OR = last.rows.output, OC = last.cols.output;
  for (PoolMode mode : {PoolMode::max, PoolMode::average}) {
    Pooling<double> pool_last(last, mode, last.output_shape());
    Pooling<double> pool_first(first, mode, first.output_shape());
    const Tensor<double> in_last = batch_of(last.input_shape(), B, x_last);
    const Tensor<double> in_first = batch_of(first.input_shape(), B, x_first);
    const std::vector<double> y1 = forward_of(pool_last, in_last, 1);
    CHECK(y1 == forward_of(pool_last, in_last, 3));
    const std::vector<double> yf = forward_of(pool_first, in_first, 2);
    std::vector<double> upstream(y1.size());
    for (std::size_t k = 0; k < upstream.size(); ++k) upstream[k] = double(k % 17) - 8;
    const std::vector<double> g1 = backward_of(pool_last, in_last, upstream, 1);
    CHECK(g1 == backward_of(pool_last, in_last, upstream, 3));
    std::vector<double> upstream_first(upstream.size());
    bool same_values = true;
    for (index_t b = 0; b < B; ++b)
      for (index_t r = 0; r < OR; ++r)
        for (index_t q = 0; q < OC; ++q)
          for (index_t c = 0; c < C; ++c) {
            const index_t at_last = b + B * (r + OR * (q + OC * c));
            const index_t at_first = b + B * (c + C * (r + OR * q));
            same_values = same_values && y1[at_last] == yf[at_first];
            upstream_first[at_first] = upstream[at_last];
          }
    CHECK(same_values);
    const std::vector<double> gf = backward_of(pool_first, in_first, upstream_first, 2);
    bool same_gradients = true;
    for (index_t b = 0; b < B; ++b)
      for (index_t i = 0; i < H; ++i)
        for (index_t j = 0; j < W; ++j)
          for (index_t c = 0; c < C; ++c) {
            same_gradients = same_gradients && g1[b + B * (i + H * (j + W * c))] ==
                                                   gf[b + B * (c + C * (i + H * j))];
          }
    CHECK(same_gradients);
  }
}

TEST(pooling_rejects_bad_shapes) {
  LocalGeometry g = pool_1d(5, 2, 2, 2, Padding::valid);
  CHECK_THROWS(Pooling<double>(g, PoolMode::max, Shape{{3, 2}}), std::invalid_argument);
  g.filters = 3;
  CHECK_THROWS(Pooling<double>(g, PoolMode::max, g.output_shape()), std::invalid_argument);
  // Global pooling may drop the size-1 axes, local pooling may not.
  const LocalGeometry global = pool_1d(5, 2, 5, 1, Padding::valid);
  Pooling<double> ok(global, PoolMode::average, Shape{{2}});
  CHECK(ok.output_shape() == Shape{{2}});
  CHECK_THROWS(Pooling<double>(pool_1d(5, 2, 2, 2, Padding::valid), PoolMode::max, Shape{{2}}),
               std::invalid_argument);
  CHECK_THROWS(parse_pool_mode("min"), std::invalid_argument);
  CHECK_THROWS(parse_max_ties("last"), std::invalid_argument);
}

TEST(c_order_offsets_of_column_major_features) {
  // Shape (2, 3): column-major feature f = i + 2 j sits at C-order i * 3 + j.
  CHECK_EQ(c_order_offsets(Shape{{2, 3}}, {0, 1}), (std::vector<index_t>{0, 3, 1, 4, 2, 5}));
  // Axes taken as (1, 0): offset j * 2 + i, the column-major order itself.
  CHECK_EQ(c_order_offsets(Shape{{2, 3}}, {1, 0}), (std::vector<index_t>{0, 1, 2, 3, 4, 5}));
  CHECK_THROWS(c_order_offsets(Shape{{2, 3}}, {0, 0}), std::invalid_argument);
}

TEST(reshape_permute_and_flatten_move_values_in_c_order) {
  // One sample of shape (2, 3) holding its C-order offsets 0..5.
  const Tensor<double> x = batch_of(Shape{{2, 3}}, 1, {0, 3, 1, 4, 2, 5});
  Reshape<double> to_3x2(Shape{{2, 3}}, Shape{{3, 2}});
  // (3, 2) in C order is 0..5 again: column-major 0, 2, 4, 1, 3, 5.
  CHECK_EQ(forward_of(to_3x2, x), (std::vector<double>{0, 2, 4, 1, 3, 5}));
  Permute<double> transpose(Shape{{2, 3}}, {1, 0});
  CHECK(transpose.output_shape() == (Shape{{3, 2}}));
  // y[j, i] = x[i, j]: column-major y is the row-major x.
  CHECK_EQ(forward_of(transpose, x), (std::vector<double>{0, 1, 2, 3, 4, 5}));
  Flatten<double> flatten(Shape{{2, 3}}, false);
  CHECK_EQ(forward_of(flatten, x), (std::vector<double>{0, 1, 2, 3, 4, 5}));
  // Backward puts every gradient back where its value came from.
  CHECK_EQ(backward_of(to_3x2, x, {0, 2, 4, 1, 3, 5}), ref::values_of(x.data));
  CHECK_EQ(backward_of(transpose, x, {0, 1, 2, 3, 4, 5}), ref::values_of(x.data));
  CHECK_THROWS(Reshape<double>(Shape{{2, 3}}, Shape{{4, 2}}), std::invalid_argument);
  CHECK_THROWS(Permute<double>(Shape{{2, 3}}, {0, 2}), std::invalid_argument);
}

TEST(pad_and_crop) {
  // (L, C) = (3, 1), two samples: pad 1 before and 2 after, then crop.
  const Tensor<double> x = batch_of(Shape{{3, 1}}, 2, {1, 10, 2, 20, 3, 30});
  PadCrop<double> pad(Shape{{3, 1}}, {1, 0}, {2, 0});
  CHECK(pad.output_shape() == (Shape{{6, 1}}));
  CHECK_EQ(forward_of(pad, x), (std::vector<double>{0, 0, 1, 10, 2, 20, 3, 30, 0, 0, 0, 0}));
  CHECK_EQ(backward_of(pad, x, {9, 9, 1, 10, 2, 20, 3, 30, 9, 9, 9, 9}), ref::values_of(x.data));
  PadCrop<double> crop(Shape{{3, 1}}, {-1, 0}, {-1, 0});
  CHECK_EQ(forward_of(crop, x), (std::vector<double>{2, 20}));
  // Cropped values get no gradient.
  CHECK_EQ(backward_of(crop, x, {5, 6}), (std::vector<double>{0, 0, 5, 6, 0, 0}));
  CHECK_THROWS(PadCrop<double>(Shape{{3, 1}}, {-2, 0}, {-1, 0}), std::invalid_argument);
  CHECK_THROWS(Gather<double>(Shape{{2}}, Shape{{2}}, {0, 0}), std::invalid_argument);
}
