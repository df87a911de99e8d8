#include "locally_connected_direct.hpp"

#include <algorithm>
#include <type_traits>
#include <utility>
#include <vector>

#include <Eigen/Core>

#include "parallel.hpp"

namespace lcnn {

namespace {

// Largest filters * patch that takes the direct path: below it the direct
// kernels beat the per-position GEMMs both forward and backward.
constexpr index_t kDirectMaxProduct = 64;

// Multiply-adds per parallel block: enough to amortise scheduling, few enough
// that 50,000 tiny positions still spread over the threads.
constexpr index_t kBlockWork = index_t(1) << 15;

// Samples accumulated in registers at once: 128 bytes, eight SSE registers.
template <typename T>
constexpr index_t kLanes = 128 / sizeof(T);

index_t items_per_block(index_t work_per_item) {
  return std::max<index_t>(1, kBlockWork / std::max<index_t>(1, work_per_item));
}

// A connected tap of one position: where its B samples start in the input,
// and its index in the position's weight block.
struct Tap {
  index_t input, weight;
};

// The connected taps of each position. Windows inside the input share one
// list of offsets from the window's origin; border windows clip their own.
class PositionTaps {
 public:
  PositionTaps(const LocalGeometry& g, index_t batch) : g_(g), st_(g.strides()), batch_(batch) {
    for (index_t i = 0; i < g.rows.kernel; ++i) {
      for (index_t j = 0; j < g.cols.kernel; ++j) {
        for (index_t ci = 0; ci < g.channels; ++ci) {
          inside_.push_back({batch * (i * st_.in_row + j * st_.in_col + ci * st_.in_channel),
                             (i * g.cols.kernel + j) * g.channels + ci});
        }
      }
    }
  }

  // Taps of the position at output row r, column c; input offsets from the
  // start of the input.
  const std::vector<Tap>& operator()(index_t r, index_t c) {
    const AxisWindow &rows = g_.rows, &cols = g_.cols;
    const index_t r0 = rows.first(r), c0 = cols.first(c);
    taps_.clear();
    if (r0 >= 0 && r0 + rows.kernel <= rows.input && c0 >= 0 && c0 + cols.kernel <= cols.input) {
      const index_t origin = batch_ * (r0 * st_.in_row + c0 * st_.in_col);
      for (const Tap& tap : inside_) taps_.push_back({origin + tap.input, tap.weight});
      return taps_;
    }
    for (index_t i = rows.tap_begin(r); i < rows.tap_end(r); ++i) {
      for (index_t j = cols.tap_begin(c); j < cols.tap_end(c); ++j) {
        for (index_t ci = 0; ci < g_.channels; ++ci) {
          taps_.push_back(
              {batch_ * ((r0 + i) * st_.in_row + (c0 + j) * st_.in_col + ci * st_.in_channel),
               (i * cols.kernel + j) * g_.channels + ci});
        }
      }
    }
    return taps_;
  }

 private:
  const LocalGeometry& g_;
  const TensorStrides st_;
  const index_t batch_;
  std::vector<Tap> inside_, taps_;
};

// body(p, r, c) for the positions p = r * OC + c in [start, start + count).
template <typename Body>
void for_each_position(const LocalGeometry& g, index_t start, index_t count, Body body) {
  const index_t OC = g.cols.output;
  index_t r = start / OC, c = start % OC;
  for (index_t p = start; p < start + count; ++p) {
    body(p, r, c);
    if (++c == OC) {
      c = 0;
      ++r;
    }
  }
}

// Where the B samples of output (row r, column c, filter o) start.
index_t output_offset(const LocalGeometry& g, const TensorStrides& st, index_t batch, index_t r,
                      index_t c, index_t o) {
  return batch * (st.out_position * (r + g.rows.output * c) + st.out_filter * o);
}

// The outputs [first, second) along an axis whose windows read input index n.
std::pair<index_t, index_t> readers(const AxisWindow& w, index_t n) {
  const index_t shifted = n + w.pad_before;
  const index_t begin = (std::max<index_t>(0, shifted - w.kernel + 1) + w.stride - 1) / w.stride;
  const index_t end = std::min(w.output, shifted / w.stride + 1);
  return {begin, std::max(begin, end)};
}

// Samples [b, b + N) of the column x, as an Eigen array (vectorised).
template <index_t N, typename T>
Eigen::Map<const Eigen::Array<T, N, 1>> lanes(const T* x, index_t b) {
  return Eigen::Map<const Eigen::Array<T, N, 1>>(x + b);
}

// out[at, at + N) = init + sum over t of weights[t] * columns[t][at, at + N),
// the N sums held in registers across the terms.
template <index_t N, typename T>
void weighted_sum_lanes(const T* const* columns, const T* weights, index_t terms, T init,
                        index_t at, T* out) {
  Eigen::Array<T, N, 1> acc = Eigen::Array<T, N, 1>::Constant(init);
  for (index_t t = 0; t < terms; ++t) acc += weights[t] * lanes<N>(columns[t], at);
  Eigen::Map<Eigen::Array<T, N, 1>>(out + at) = acc;
}

// out[0, batch) = init + sum over t of weights[t] * columns[t][0, batch).
template <typename T>
void weighted_sum(const T* const* columns, const T* weights, index_t terms, T init, index_t batch,
                  T* out) {
  constexpr index_t L = kLanes<T>;
  index_t b = 0;
  for (; b + L <= batch; b += L) weighted_sum_lanes<L>(columns, weights, terms, init, b, out);
  for (; b < batch; ++b) weighted_sum_lanes<1>(columns, weights, terms, init, b, out);
}

// The sum over the batch of term(N, b), the samples [b, b + N) of some
// column expression: lane sums, then the lanes and the remainder, in a
// fixed order.
template <typename T, typename Term>
T batch_sum(index_t batch, Term term) {
  constexpr index_t L = kLanes<T>;
  using Lane = std::integral_constant<index_t, L>;
  using One = std::integral_constant<index_t, 1>;
  Eigen::Array<T, L, 1> acc = Eigen::Array<T, L, 1>::Zero();
  index_t b = 0;
  for (; b + L <= batch; b += L) acc += term(Lane(), b);
  T total = acc.sum();
  for (; b < batch; ++b) total += term(One(), b)(0);
  return total;
}

}  // namespace

bool direct_path_fits(const LocalGeometry& g) { return g.filters * g.patch() <= kDirectMaxProduct; }

// Per position: its connected input columns, then per filter one weighted
// sum of them into the output column.
template <typename T>
void direct_forward(const LocalGeometry& g, index_t batch, const T* kernel, const T* bias,
                    const DirectIO<T>& io, int threads) {
  const TensorStrides st = g.strides();
  const index_t F = g.filters, KC = g.patch();
  for_each_block(g.positions(), items_per_block(batch * F * KC), threads,
                 [&](index_t start, index_t count) {
    PositionTaps taps_of(g, batch);
    std::vector<const T*> columns;
    std::vector<T> weights;
    Buffer<T> run(io.result != nullptr ? batch : 0);
    for_each_position(g, start, count, [&](index_t p, index_t r, index_t c) {
      const std::vector<Tap>& taps = taps_of(r, c);
      const index_t n = static_cast<index_t>(taps.size());
      columns.resize(taps.size());
      weights.resize(taps.size());
      for (index_t t = 0; t < n; ++t) columns[t] = io.input + taps[t].input;
      for (index_t o = 0; o < F; ++o) {
        const T* block = kernel + (p * F + o) * KC;
        for (index_t t = 0; t < n; ++t) weights[t] = block[taps[t].weight];
        const T init = bias ? bias[p * F + o] : T(0);
        if (io.result == nullptr) {
          weighted_sum(columns.data(), weights.data(), n, init, batch,
                       io.output + output_offset(g, st, batch, r, c, o));
          continue;
        }
        weighted_sum(columns.data(), weights.data(), n, init, batch, run.data());
        activate_elementwise(io.activation, run.data(), batch);
        io.result->write(run.data(), output_offset(g, st, 1, r, c, o), batch);
      }
    });
    if (io.result != nullptr) finish_streaming(io.result->stream);
  });
}

// Per position and filter: the bias gradient is the sum of the output
// gradient over the batch, each kernel gradient its dot product with a tap's
// input column.
template <typename T>
void direct_parameter_gradients(const LocalGeometry& g, index_t batch, const T* input,
                                const T* grad_output, T* kernel_grad, T* bias_grad,
                                int threads) {
  const TensorStrides st = g.strides();
  const index_t F = g.filters, KC = g.patch();
  for_each_block(g.positions(), items_per_block(batch * F * KC), threads,
                 [&](index_t start, index_t count) {
    PositionTaps taps_of(g, batch);
    for_each_position(g, start, count, [&](index_t p, index_t r, index_t c) {
      const std::vector<Tap>& taps = taps_of(r, c);
      for (index_t o = 0; o < F; ++o) {
        const T* grad = grad_output + output_offset(g, st, batch, r, c, o);
        if (bias_grad != nullptr) {
          bias_grad[p * F + o] = batch_sum<T>(
              batch, [grad](auto n, index_t b) { return lanes<decltype(n)::value>(grad, b); });
        }
        T* block = kernel_grad + (p * F + o) * KC;
        for (const Tap& tap : taps) {
          const T* x = input + tap.input;
          block[tap.weight] = batch_sum<T>(batch, [x, grad](auto n, index_t b) {
            return lanes<decltype(n)::value>(x, b) * lanes<decltype(n)::value>(grad, b);
          });
        }
      }
    });
  });
}

// Per input element (row, column, channel): the weighted sum of the output
// gradients of every (position, filter) whose window reads it, in the order
// of rows, columns, filters.
template <typename T>
void direct_input_gradient(const LocalGeometry& g, index_t batch, const T* grad_output,
                           const T* kernel, T* grad_input, int threads) {
  const TensorStrides st = g.strides();
  const index_t H = g.rows.input, OC = g.cols.output, F = g.filters, KC = g.patch();
  const index_t C = g.channels, k1 = g.cols.kernel;
  const index_t readers_most = ((g.rows.kernel + g.rows.stride - 1) / g.rows.stride) *
                               ((k1 + g.cols.stride - 1) / g.cols.stride) * F;
  for_each_block(H * g.cols.input, items_per_block(batch * C * readers_most), threads,
                 [&](index_t start, index_t count) {
    std::vector<const T*> columns;
    std::vector<index_t> weight_at;  // kernel offsets of channel 0
    std::vector<T> weights;
    for (index_t pixel = start; pixel < start + count; ++pixel) {
      const index_t ir = pixel % H, ic = pixel / H;
      const auto [r0, r1] = readers(g.rows, ir);
      const auto [c0, c1] = readers(g.cols, ic);
      columns.clear();
      weight_at.clear();
      for (index_t r = r0; r < r1; ++r) {
        const index_t i = ir - g.rows.first(r);
        for (index_t c = c0; c < c1; ++c) {
          const index_t j = ic - g.cols.first(c), p = r * OC + c;
          for (index_t o = 0; o < F; ++o) {
            columns.push_back(grad_output + output_offset(g, st, batch, r, c, o));
            weight_at.push_back((p * F + o) * KC + (i * k1 + j) * C);
          }
        }
      }
      const index_t n = static_cast<index_t>(columns.size());
      weights.resize(columns.size());
      for (index_t ci = 0; ci < C; ++ci) {
        for (index_t t = 0; t < n; ++t) weights[t] = kernel[weight_at[t] + ci];
        weighted_sum(columns.data(), weights.data(), n, T(0), batch,
                     grad_input + batch * (ir * st.in_row + ic * st.in_col + ci * st.in_channel));
      }
    }
  });
}

#define LCNN_INSTANTIATE(T)                                                                    \
  template void direct_forward<T>(const LocalGeometry&, index_t, const T*, const T*,            \
                                  const DirectIO<T>&, int);                                    \
  template void direct_parameter_gradients<T>(const LocalGeometry&, index_t, const T*,         \
                                              const T*, T*, T*, int);                          \
  template void direct_input_gradient<T>(const LocalGeometry&, index_t, const T*, const T*,    \
                                         T*, int);
LCNN_INSTANTIATE(float)
LCNN_INSTANTIATE(double)
#undef LCNN_INSTANTIATE

}  // namespace lcnn
