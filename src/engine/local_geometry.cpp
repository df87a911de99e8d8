#include "local_geometry.hpp"

#include <algorithm>
#include <stdexcept>

namespace lcnn {

Padding parse_padding(const std::string& name) {
  if (name == "valid") return Padding::valid;
  if (name == "same") return Padding::same;
  if (name == "causal") return Padding::causal;
  throw std::invalid_argument("unknown padding '" + name + "'");
}

DataFormat parse_data_format(const std::string& name) {
  if (name == "channels_last") return DataFormat::channels_last;
  if (name == "channels_first") return DataFormat::channels_first;
  throw std::invalid_argument("unknown data_format '" + name + "'");
}

SamePadding parse_same_padding(const std::string& name) {
  if (name == "locally_connected") return SamePadding::locally_connected;
  if (name == "convolution") return SamePadding::convolution;
  throw std::invalid_argument("unknown same padding '" + name + "'");
}

AxisWindow AxisWindow::make(index_t input, index_t kernel, index_t stride, Padding padding,
                            SamePadding same) {
  AxisWindow w = convolution(input, kernel, stride, 1, padding);
  if (padding == Padding::same && same == SamePadding::locally_connected) w.pad_before = kernel / 2;
  return w;
}

AxisWindow AxisWindow::convolution(index_t input, index_t kernel, index_t stride,
                                   index_t dilation, Padding padding) {
  if (input < 1 || kernel < 1 || stride < 1 || dilation < 1) {
    throw std::invalid_argument(
        "a window axis needs input, kernel, stride and dilation >= 1, got " +
        std::to_string(input) + ", " + std::to_string(kernel) + ", " + std::to_string(stride) +
        ", " + std::to_string(dilation));
  }
  AxisWindow w;
  w.input = input;
  w.kernel = kernel;
  w.stride = stride;
  w.dilation = dilation;
  const index_t span = w.span();
  switch (padding) {
    case Padding::valid:
      w.pad_before = 0;
      // Floor division that stays correct when input < span.
      w.output = input >= span ? (input - span) / stride + 1 : 0;
      break;
    case Padding::same:
      w.output = (input + stride - 1) / stride;
      w.pad_before = std::max<index_t>((w.output - 1) * stride + span - input, 0) / 2;
      break;
    case Padding::causal:
      w.pad_before = span - 1;
      w.output = (input + stride - 1) / stride;
      break;
  }
  return w;
}

index_t AxisWindow::tap_begin(index_t r) const {
  const index_t before = -first(r);  // input positions left of the input
  return before > 0 ? (before + dilation - 1) / dilation : 0;
}

index_t AxisWindow::tap_end(index_t r) const {
  const index_t room = input - first(r);  // taps at offsets < room lie inside
  const index_t end = room > 0 ? std::min(kernel, (room + dilation - 1) / dilation) : 0;
  return std::max(tap_begin(r), end);
}

void WindowGeometry::validate_sizes(const std::string& layer) const {
  for (const AxisWindow* w : {&rows, &cols}) {
    if (w->input < 1 || w->kernel < 1 || w->stride < 1 || w->dilation < 1 || w->output < 1) {
      throw std::invalid_argument(layer + " on input " + input_shape().to_string() +
                                  " gives output " + output_shape().to_string() +
                                  "; every size must be >= 1");
    }
  }
  if (channels < 1 || filters < 1) {
    throw std::invalid_argument(layer + " needs channels and filters >= 1");
  }
}

Shape WindowGeometry::input_shape() const {
  const bool last = format == DataFormat::channels_last;
  if (one_d) return last ? Shape{{rows.input, channels}} : Shape{{channels, rows.input}};
  return last ? Shape{{rows.input, cols.input, channels}}
              : Shape{{channels, rows.input, cols.input}};
}

Shape WindowGeometry::output_shape() const {
  const bool last = format == DataFormat::channels_last;
  if (one_d) return last ? Shape{{rows.output, filters}} : Shape{{filters, rows.output}};
  return last ? Shape{{rows.output, cols.output, filters}}
              : Shape{{filters, rows.output, cols.output}};
}

TensorStrides WindowGeometry::strides() const {
  const index_t H = rows.input, C = channels;
  if (format == DataFormat::channels_last) {
    return {1, H, H * cols.input, 1, positions()};
  }
  return {C, C * H, 1, filters, 1};
}

namespace {

index_t connected_rows_total(const AxisWindow& w) {
  index_t n = 0;
  for (index_t r = 0; r < w.output; ++r) n += w.connected(r);
  return n;
}

}  // namespace

Shape LocalGeometry::keras_kernel_shape(int implementation) const {
  const bool last = format == DataFormat::channels_last;
  const index_t H = rows.input, W = cols.input, C = channels, F = filters;
  const index_t OR = rows.output, OC = cols.output;
  switch (implementation) {
    case 1:
      return Shape{{positions(), patch(), F}};
    case 2:
      if (one_d) return last ? Shape{{H, C, OR, F}} : Shape{{C, H, F, OR}};
      return last ? Shape{{H, W, C, OR, OC, F}} : Shape{{C, H, W, F, OR, OC}};
    case 3:
      return Shape{{connected_rows_total(rows) * connected_rows_total(cols) * C * F}};
    default:
      throw std::invalid_argument("implementation must be 1, 2 or 3");
  }
}

Shape LocalGeometry::keras_bias_shape() const {
  if (one_d) return Shape{{rows.output, filters}};
  return Shape{{rows.output, cols.output, filters}};
}

namespace {

// Calls visit(lcnn_index, keras_index) for every connected kernel weight,
// where keras_index is the weight's offset in the column-major Keras array
// of the given implementation (KERAS_SEMANTICS.md section 3).
template <typename Visit>
void for_each_kernel_entry(const LocalGeometry& g, int implementation, Visit visit) {
  const bool last = g.format == DataFormat::channels_last;
  const index_t H = g.rows.input, W = g.cols.input, C = g.channels, F = g.filters;
  const index_t OR = g.rows.output, OC = g.cols.output, P = g.positions();
  const index_t k0 = g.rows.kernel, k1 = g.cols.kernel, KC = g.patch();

  // Implementation 3 orders weights by (output, input) pair; these prefix
  // sums of connected taps per position give each output's first offset.
  std::vector<index_t> taps_before(static_cast<std::size_t>(P) + 1, 0);
  for (index_t p = 0; p < P; ++p) {
    taps_before[p + 1] = taps_before[p] + g.rows.connected(p / OC) * g.cols.connected(p % OC);
  }
  const index_t taps_total = taps_before[P];

  for (index_t p = 0; p < P; ++p) {
    const index_t r = p / OC, c = p % OC;
    const index_t i0 = g.rows.tap_begin(r), i1 = g.rows.tap_end(r);
    const index_t j0 = g.cols.tap_begin(c), j1 = g.cols.tap_end(c);
    const index_t n_cols = j1 - j0, n_taps = (i1 - i0) * n_cols;
    for (index_t o = 0; o < F; ++o) {
      for (index_t i = i0; i < i1; ++i) {
        for (index_t j = j0; j < j1; ++j) {
          const index_t ir = g.rows.first(r) + i, ic = g.cols.first(c) + j;
          const index_t tap_rank = (i - i0) * n_cols + (j - j0);
          for (index_t ci = 0; ci < C; ++ci) {
            const index_t lcnn_index = (p * F + o) * KC + (i * k1 + j) * C + ci;
            index_t keras_index = 0;
            switch (implementation) {
              case 1: {
                const index_t m = last ? (i * k1 + j) * C + ci : (ci * k0 + i) * k1 + j;
                keras_index = p + P * (m + KC * o);
                break;
              }
              case 2:
                keras_index = last ? ir + H * (ic + W * (ci + C * (r + OR * (c + OC * o))))
                                   : ci + C * (ir + H * (ic + W * (o + F * (r + OR * c))));
                break;
              case 3:
                keras_index = last ? C * F * taps_before[p] + o * C * n_taps + tap_rank * C + ci
                                   : C * (o * taps_total + taps_before[p]) + ci * n_taps + tap_rank;
                break;
              default:
                throw std::invalid_argument("implementation must be 1, 2 or 3");
            }
            visit(lcnn_index, keras_index);
          }
        }
      }
    }
  }
}

// Calls visit(lcnn_index, keras_index) for every bias value. With
// channels_first Keras reshapes (not transposes) the (OR, OC, F) bias to
// (F, OR, OC), so output (p, o) takes the C-order element o * P + p.
template <typename Visit>
void for_each_bias_entry(const LocalGeometry& g, Visit visit) {
  const index_t F = g.filters, OR = g.rows.output, OC = g.cols.output, P = g.positions();
  const bool last = g.format == DataFormat::channels_last;
  for (index_t p = 0; p < P; ++p) {
    for (index_t o = 0; o < F; ++o) {
      const index_t flat = last ? p * F + o : o * P + p;
      const index_t kr = flat / (OC * F), kc = (flat / F) % OC, ko = flat % F;
      visit(p * F + o, kr + OR * (kc + OC * ko));
    }
  }
}

}  // namespace

template <typename T>
void kernel_from_keras(const LocalGeometry& g, int implementation, const double* keras, T* lcnn) {
  std::fill(lcnn, lcnn + g.kernel_size(), T(0));
  for_each_kernel_entry(g, implementation,
                        [&](index_t l, index_t k) { lcnn[l] = static_cast<T>(keras[k]); });
}

template <typename T>
void kernel_to_keras(const LocalGeometry& g, int implementation, const T* lcnn, double* keras) {
  std::fill(keras, keras + g.keras_kernel_shape(implementation).size(), 0.0);
  for_each_kernel_entry(g, implementation,
                        [&](index_t l, index_t k) { keras[k] = static_cast<double>(lcnn[l]); });
}

template <typename T>
void bias_from_keras(const LocalGeometry& g, const double* keras, T* lcnn) {
  for_each_bias_entry(g, [&](index_t l, index_t k) { lcnn[l] = static_cast<T>(keras[k]); });
}

template <typename T>
void bias_to_keras(const LocalGeometry& g, const T* lcnn, double* keras) {
  for_each_bias_entry(g, [&](index_t l, index_t k) { keras[k] = static_cast<double>(lcnn[l]); });
}

template <typename T>
void zero_unconnected(const LocalGeometry& g, T* lcnn) {
  const index_t OC = g.cols.output, F = g.filters, C = g.channels;
  const index_t k0 = g.rows.kernel, k1 = g.cols.kernel, KC = g.patch();
  for (index_t p = 0; p < g.positions(); ++p) {
    const index_t r = p / OC, c = p % OC;
    if (g.rows.connected(r) == k0 && g.cols.connected(c) == k1) continue;
    for (index_t o = 0; o < F; ++o) {
      T* block = lcnn + (p * F + o) * KC;
      for (index_t i = 0; i < k0; ++i) {
        const bool row_inside = i >= g.rows.tap_begin(r) && i < g.rows.tap_end(r);
        for (index_t j = 0; j < k1; ++j) {
          if (row_inside && j >= g.cols.tap_begin(c) && j < g.cols.tap_end(c)) continue;
          std::fill(block + (i * k1 + j) * C, block + (i * k1 + j + 1) * C, T(0));
        }
      }
    }
  }
}

#define LCNN_INSTANTIATE(T)                                                              \
  template void kernel_from_keras<T>(const LocalGeometry&, int, const double*, T*);      \
  template void kernel_to_keras<T>(const LocalGeometry&, int, const T*, double*);        \
  template void bias_from_keras<T>(const LocalGeometry&, const double*, T*);             \
  template void bias_to_keras<T>(const LocalGeometry&, const T*, double*);               \
  template void zero_unconnected<T>(const LocalGeometry&, T*);
LCNN_INSTANTIATE(float)
LCNN_INSTANTIATE(double)
#undef LCNN_INSTANTIATE

}  // namespace lcnn
