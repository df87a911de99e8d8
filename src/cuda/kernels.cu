// The kernels of cuda/device.hpp. Each thread owns the values it writes and
// adds its terms in a fixed order, so results never depend on the launch
// shape or on timing: no atomics, same inputs, same bits.
#include "../engine/activation_formulas.hpp"
#include "../engine/penalty_formula.hpp"
#include "device.hpp"
#include "launch.hpp"

namespace lcnn {
namespace cuda {

using Index = std::int64_t;

namespace {

LCNN_KERNEL void gather_kernel(const Index* source, Index features, Index batch, const float* in,
                               float* out) {
  for (Index i = thread_index(); i < features * batch; i += thread_count()) {
    const Index g = i / batch, b = i % batch;
    out[i] = source[g] < 0 ? 0.0f : in[source[g] * batch + b];
  }
}

LCNN_KERNEL void scatter_kernel(const Index* source, Index features, Index batch,
                                const float* grad_out, float* grad_in) {
  for (Index i = thread_index(); i < features * batch; i += thread_count()) {
    const Index g = i / batch, b = i % batch;
    if (source[g] >= 0) grad_in[source[g] * batch + b] = grad_out[i];
  }
}

LCNN_KERNEL void activate_kernel(Activation activation, float* values, Index n) {
  for (Index i = thread_index(); i < n; i += thread_count()) {
    values[i] = activation_value(activation, values[i]);
  }
}

LCNN_KERNEL void softmax_kernel(float* values, Index len, Index stride) {
  for (Index start = thread_index(); start < stride; start += thread_count()) {
    softmax_group(values + start, len, stride);
  }
}

LCNN_KERNEL void activation_gradient_kernel(Activation activation, const float* z, const float* y,
                                            const float* grad_y, float* grad_z, Index n) {
  for (Index i = thread_index(); i < n; i += thread_count()) {
    grad_z[i] = grad_y[i] * activation_derivative(activation, z[i], y[i]);
  }
}

LCNN_KERNEL void softmax_gradient_kernel(const float* y, const float* grad_y, float* grad_z,
                                         Index len, Index stride) {
  for (Index start = thread_index(); start < stride; start += thread_count()) {
    softmax_group_gradient(y + start, grad_y + start, grad_z + start, len, stride);
  }
}

LCNN_KERNEL void multiply_kernel(const float* a, const float* b, float* out, Index n) {
  for (Index i = thread_index(); i < n; i += thread_count()) out[i] = a[i] * b[i];
}

LCNN_KERNEL void broadcast_bias_kernel(const float* bias, Index rows, Index features, float* out) {
  for (Index i = thread_index(); i < rows * features; i += thread_count()) {
    out[i] = bias[i / rows];
  }
}

LCNN_KERNEL void column_sums_kernel(const float* matrix, Index rows, Index cols, Index ld,
                                    float* sums) {
  for (Index j = thread_index(); j < cols; j += thread_count()) {
    float total = 0;
    for (Index i = 0; i < rows; ++i) total += matrix[i + j * ld];
    sums[j] = total;
  }
}

// Offset (in units of the batch) of input tap l = (i * kernel_cols + j) *
// channels + channel of position p, or -1 where the tap lies outside.
LCNN_DEVICE inline Index tap_offset(const LocalShape& s, Index p, Index l) {
  const Index r = p / s.out_cols, c = p % s.out_cols;
  const Index channel = l % s.channels, tap = l / s.channels;
  const Index i = tap / s.kernel_cols, j = tap % s.kernel_cols;
  const Index row = r * s.stride_rows - s.pad_rows + i;
  const Index col = c * s.stride_cols - s.pad_cols + j;
  if (row < 0 || row >= s.in_rows || col < 0 || col >= s.in_cols) return -1;
  return row * s.in_row + col * s.in_col + channel * s.in_channel;
}

// Offset (in units of the batch) of output (p, f).
LCNN_DEVICE inline Index output_offset(const LocalShape& s, Index p, Index f) {
  const Index r = p / s.out_cols, c = p % s.out_cols;
  return (r + s.out_rows * c) * s.out_position + f * s.out_filter;
}

LCNN_KERNEL void local_patches_kernel(LocalShape s, Index batch, Index first, Index count,
                                      const float* input, float* patches) {
  const Index KC = s.patch();
  for (Index i = thread_index(); i < count * KC * batch; i += thread_count()) {
    const Index b = i % batch, l = (i / batch) % KC, q = i / (batch * KC);
    const Index offset = tap_offset(s, first + q, l);
    patches[i] = offset < 0 ? 0.0f : input[offset * batch + b];
  }
}

LCNN_KERNEL void local_bias_kernel(LocalShape s, Index batch, const float* bias, float* output) {
  const Index F = s.filters;
  for (Index i = thread_index(); i < s.positions() * F * batch; i += thread_count()) {
    const Index b = i % batch, f = (i / batch) % F, p = i / (batch * F);
    output[output_offset(s, p, f) * batch + b] = bias == nullptr ? 0.0f : bias[p * F + f];
  }
}

LCNN_KERNEL void local_forward_direct_kernel(LocalShape s, Index batch, const float* input,
                                             const float* kernel, const float* bias,
                                             float* output) {
  const Index F = s.filters, KC = s.patch();
  for (Index i = thread_index(); i < s.positions() * F * batch; i += thread_count()) {
    const Index b = i % batch, f = (i / batch) % F, p = i / (batch * F);
    const float* weights = kernel + (p * F + f) * KC;
    float total = bias == nullptr ? 0.0f : bias[p * F + f];
    for (Index l = 0; l < KC; ++l) {
      const Index offset = tap_offset(s, p, l);
      if (offset >= 0) total += input[offset * batch + b] * weights[l];
    }
    output[output_offset(s, p, f) * batch + b] = total;
  }
}

LCNN_KERNEL void local_kernel_gradient_kernel(LocalShape s, Index batch, const float* input,
                                              const float* grad_output, float* grad_kernel) {
  const Index F = s.filters, KC = s.patch();
  for (Index i = thread_index(); i < s.positions() * F * KC; i += thread_count()) {
    const Index l = i % KC, f = (i / KC) % F, p = i / (KC * F);
    const Index offset = tap_offset(s, p, l);
    float total = 0;
    if (offset >= 0) {
      const float* x = input + offset * batch;
      const float* g = grad_output + output_offset(s, p, f) * batch;
      for (Index b = 0; b < batch; ++b) total += x[b] * g[b];
    }
    grad_kernel[i] = total;
  }
}

LCNN_KERNEL void local_bias_gradient_kernel(LocalShape s, Index batch, const float* grad_output,
                                            float* grad_bias) {
  const Index F = s.filters;
  for (Index i = thread_index(); i < s.positions() * F; i += thread_count()) {
    const float* g = grad_output + output_offset(s, i / F, i % F) * batch;
    float total = 0;
    for (Index b = 0; b < batch; ++b) total += g[b];
    grad_bias[i] = total;
  }
}

// The row, column and channel of an input feature (its offset in units of
// the batch).
LCNN_DEVICE inline void input_position(const LocalShape& s, Index feature, Index& row, Index& col,
                                       Index& channel) {
  if (s.in_channel == 1) {  // channels first: (C, rows, cols)
    channel = feature % s.channels;
    row = (feature / s.channels) % s.in_rows;
    col = feature / (s.channels * s.in_rows);
  } else {  // channels last: (rows, cols, C)
    row = feature % s.in_rows;
    col = (feature / s.in_rows) % s.in_cols;
    channel = feature / (s.in_rows * s.in_cols);
  }
}

// First and one-past-last output index along an axis whose windows (start
// o * stride - pad, length kernel) contain input index x.
LCNN_DEVICE inline void covering(Index x, Index kernel, Index stride, Index pad, Index outputs,
                                 Index& begin, Index& end) {
  const Index shifted = x + pad;  // o * stride <= shifted < o * stride + kernel
  const Index low = shifted - kernel + 1;
  begin = low <= 0 ? 0 : (low + stride - 1) / stride;
  end = shifted < 0 ? 0 : shifted / stride + 1;
  if (end > outputs) end = outputs;
}

LCNN_KERNEL void local_input_gradient_kernel(LocalShape s, Index batch,
                                             const float* patch_gradients, const float* grad_output,
                                             const float* kernel, float* grad_input) {
  const Index F = s.filters, KC = s.patch();
  for (Index i = thread_index(); i < s.inputs() * batch; i += thread_count()) {
    const Index b = i % batch;
    Index row, col, channel;
    input_position(s, i / batch, row, col, channel);
    Index r_begin, r_end, c_begin, c_end;
    covering(row, s.kernel_rows, s.stride_rows, s.pad_rows, s.out_rows, r_begin, r_end);
    covering(col, s.kernel_cols, s.stride_cols, s.pad_cols, s.out_cols, c_begin, c_end);
    float total = 0;
    for (Index r = r_begin; r < r_end; ++r) {
      for (Index c = c_begin; c < c_end; ++c) {
        const Index p = r * s.out_cols + c;
        const Index tap_i = row - (r * s.stride_rows - s.pad_rows);
        const Index tap_j = col - (c * s.stride_cols - s.pad_cols);
        const Index l = (tap_i * s.kernel_cols + tap_j) * s.channels + channel;
        if (patch_gradients != nullptr) {
          total += patch_gradients[(p * KC + l) * batch + b];
        } else {
          for (Index f = 0; f < F; ++f) {
            total += grad_output[output_offset(s, p, f) * batch + b] * kernel[(p * F + f) * KC + l];
          }
        }
      }
    }
    grad_input[i] = total;
  }
}

// Offset (in units of the batch) of input (row, col, channel).
LCNN_DEVICE inline Index input_offset(const LocalShape& s, Index row, Index col, Index channel) {
  return row * s.in_row + col * s.in_col + channel * s.in_channel;
}

// The taps of output (r, c) along each axis that lie inside the input.
LCNN_DEVICE inline void inside_taps(Index first, Index kernel, Index input, Index& begin,
                                    Index& end) {
  begin = first < 0 ? -first : 0;
  end = input - first < kernel ? input - first : kernel;
  if (end < begin) end = begin;
}

LCNN_KERNEL void pool_forward_kernel(LocalShape s, bool max, Index batch, const float* input,
                                     float* output) {
  const Index C = s.channels;
  for (Index i = thread_index(); i < s.positions() * C * batch; i += thread_count()) {
    const Index b = i % batch, channel = (i / batch) % C, p = i / (batch * C);
    const Index r = p / s.out_cols, c = p % s.out_cols;
    const Index row0 = r * s.stride_rows - s.pad_rows, col0 = c * s.stride_cols - s.pad_cols;
    Index i_begin, i_end, j_begin, j_end;
    inside_taps(row0, s.kernel_rows, s.in_rows, i_begin, i_end);
    inside_taps(col0, s.kernel_cols, s.in_cols, j_begin, j_end);
    float pooled = 0;
    bool first_tap = true;
    for (Index ti = i_begin; ti < i_end; ++ti) {
      for (Index tj = j_begin; tj < j_end; ++tj) {
        const float tap = input[input_offset(s, row0 + ti, col0 + tj, channel) * batch + b];
        if (first_tap) {
          pooled = tap;
        } else if (max) {
          pooled = pooled < tap ? tap : pooled;  // std::max(pooled, tap)
        } else {
          pooled += tap;
        }
        first_tap = false;
      }
    }
    if (!max) pooled *= 1.0f / static_cast<float>((i_end - i_begin) * (j_end - j_begin));
    output[output_offset(s, p, channel) * batch + b] = pooled;
  }
}

LCNN_KERNEL void pool_backward_kernel(LocalShape s, bool max, bool split_ties, Index batch,
                                      const float* input, const float* grad_output,
                                      float* grad_input) {
  const Index C = s.channels;
  for (Index i = thread_index(); i < C * batch; i += thread_count()) {
    const Index b = i % batch, channel = i / batch;
    for (Index row = 0; row < s.in_rows; ++row) {
      for (Index col = 0; col < s.in_cols; ++col) {
        grad_input[input_offset(s, row, col, channel) * batch + b] = 0;
      }
    }
    for (Index p = 0; p < s.positions(); ++p) {
      const Index r = p / s.out_cols, c = p % s.out_cols;
      const Index row0 = r * s.stride_rows - s.pad_rows, col0 = c * s.stride_cols - s.pad_cols;
      Index i_begin, i_end, j_begin, j_end;
      inside_taps(row0, s.kernel_rows, s.in_rows, i_begin, i_end);
      inside_taps(col0, s.kernel_cols, s.in_cols, j_begin, j_end);
      const float grad = grad_output[output_offset(s, p, channel) * batch + b];
      if (!max) {
        const float scale = 1.0f / static_cast<float>((i_end - i_begin) * (j_end - j_begin));
        for (Index ti = i_begin; ti < i_end; ++ti) {
          for (Index tj = j_begin; tj < j_end; ++tj) {
            grad_input[input_offset(s, row0 + ti, col0 + tj, channel) * batch + b] += grad * scale;
          }
        }
        continue;
      }
      float best = 0;
      Index best_at = 0, holders = 0;
      bool first_tap = true;
      for (Index ti = i_begin; ti < i_end; ++ti) {
        for (Index tj = j_begin; tj < j_end; ++tj) {
          const Index at = input_offset(s, row0 + ti, col0 + tj, channel);
          const float tap = input[at * batch + b];
          if (first_tap || tap > best) {
            best = tap;
            best_at = at;
            holders = 1;
          } else if (tap == best) {
            ++holders;
          }
          first_tap = false;
        }
      }
      if (!split_ties) {
        grad_input[best_at * batch + b] += grad;
        continue;
      }
      for (Index ti = i_begin; ti < i_end; ++ti) {
        for (Index tj = j_begin; tj < j_end; ++tj) {
          const Index at = input_offset(s, row0 + ti, col0 + tj, channel);
          if (input[at * batch + b] == best) {
            grad_input[at * batch + b] += grad / static_cast<float>(holders);
          }
        }
      }
    }
  }
}

// Input row (or column) of tap i of output r, maybe outside the input.
LCNN_DEVICE inline Index conv_at(Index r, Index i, Index stride, Index pad, Index dilation) {
  return r * stride - pad + i * dilation;
}

// Weight (i, j, group channel, f) of a Keras-layout convolution kernel.
LCNN_DEVICE inline Index conv_weight(const LocalShape& s, Index i, Index j, Index channel,
                                     Index f) {
  const Index group_channels = s.channels / s.groups;
  return i + s.kernel_rows * (j + s.kernel_cols * (channel + group_channels * f));
}

LCNN_KERNEL void conv_forward_kernel(LocalShape s, Index batch, const float* input,
                                     const float* kernel, const float* bias, float* output) {
  const Index F = s.filters, Cg = s.channels / s.groups, Fg = s.filters / s.groups;
  for (Index n = thread_index(); n < s.positions() * F * batch; n += thread_count()) {
    const Index b = n % batch, f = (n / batch) % F, p = n / (batch * F);
    const Index r = p / s.out_cols, c = p % s.out_cols, first_channel = (f / Fg) * Cg;
    float total = bias == nullptr ? 0.0f : bias[f];
    for (Index ch = 0; ch < Cg; ++ch) {
      for (Index j = 0; j < s.kernel_cols; ++j) {
        const Index col = conv_at(c, j, s.stride_cols, s.pad_cols, s.dilation_cols);
        if (col < 0 || col >= s.in_cols) continue;
        for (Index i = 0; i < s.kernel_rows; ++i) {
          const Index row = conv_at(r, i, s.stride_rows, s.pad_rows, s.dilation_rows);
          if (row < 0 || row >= s.in_rows) continue;
          total += input[input_offset(s, row, col, first_channel + ch) * batch + b] *
                   kernel[conv_weight(s, i, j, ch, f)];
        }
      }
    }
    output[output_offset(s, p, f) * batch + b] = total;
  }
}

LCNN_KERNEL void conv_kernel_gradient_kernel(LocalShape s, Index batch, const float* input,
                                             const float* grad_output, float* grad_kernel) {
  const Index Cg = s.channels / s.groups, Fg = s.filters / s.groups;
  const Index taps = s.kernel_rows * s.kernel_cols;
  for (Index n = thread_index(); n < taps * Cg * s.filters; n += thread_count()) {
    // n is the weight's index in Keras's column-major layout.
    const Index i = n % s.kernel_rows, j = (n / s.kernel_rows) % s.kernel_cols;
    const Index ch = (n / taps) % Cg, f = n / (taps * Cg);
    const Index channel = (f / Fg) * Cg + ch;
    float total = 0;
    for (Index p = 0; p < s.positions(); ++p) {
      const Index r = p / s.out_cols, c = p % s.out_cols;
      const Index row = conv_at(r, i, s.stride_rows, s.pad_rows, s.dilation_rows);
      const Index col = conv_at(c, j, s.stride_cols, s.pad_cols, s.dilation_cols);
      if (row < 0 || row >= s.in_rows || col < 0 || col >= s.in_cols) continue;
      const float* x = input + input_offset(s, row, col, channel) * batch;
      const float* g = grad_output + output_offset(s, p, f) * batch;
      for (Index b = 0; b < batch; ++b) total += x[b] * g[b];
    }
    grad_kernel[n] = total;
  }
}

LCNN_KERNEL void conv_bias_gradient_kernel(LocalShape s, Index batch, const float* grad_output,
                                           float* grad_bias) {
  for (Index f = thread_index(); f < s.filters; f += thread_count()) {
    float total = 0;
    for (Index p = 0; p < s.positions(); ++p) {
      const float* g = grad_output + output_offset(s, p, f) * batch;
      for (Index b = 0; b < batch; ++b) total += g[b];
    }
    grad_bias[f] = total;
  }
}

// The output index along an axis whose tap i reads input x, or -1.
LCNN_DEVICE inline Index conv_output_of(Index x, Index i, Index stride, Index pad, Index dilation,
                                        Index outputs) {
  const Index shifted = x + pad - i * dilation;
  if (shifted < 0 || shifted % stride != 0 || shifted / stride >= outputs) return -1;
  return shifted / stride;
}

LCNN_KERNEL void conv_input_gradient_kernel(LocalShape s, Index batch, const float* grad_output,
                                            const float* kernel, float* grad_input) {
  const Index Cg = s.channels / s.groups, Fg = s.filters / s.groups;
  for (Index n = thread_index(); n < s.inputs() * batch; n += thread_count()) {
    const Index b = n % batch;
    Index row, col, channel;
    input_position(s, n / batch, row, col, channel);
    const Index group = channel / Cg, ch = channel % Cg;
    float total = 0;
    for (Index i = 0; i < s.kernel_rows; ++i) {
      const Index r =
          conv_output_of(row, i, s.stride_rows, s.pad_rows, s.dilation_rows, s.out_rows);
      if (r < 0) continue;
      for (Index j = 0; j < s.kernel_cols; ++j) {
        const Index c =
            conv_output_of(col, j, s.stride_cols, s.pad_cols, s.dilation_cols, s.out_cols);
        if (c < 0) continue;
        const Index p = r * s.out_cols + c;
        for (Index f = group * Fg; f < (group + 1) * Fg; ++f) {
          total +=
              grad_output[output_offset(s, p, f) * batch + b] * kernel[conv_weight(s, i, j, ch, f)];
        }
      }
    }
    grad_input[n] = total;
  }
}

LCNN_KERNEL void channel_partial_sums_kernel(ChannelRuns e, const float* a, const float* b,
                                            const double* center, const double* factor,
                                            double* partials) {
  const Index chunks = e.chunks(), n = e.per_channel();
  for (Index unit = thread_index(); unit < e.channels * chunks; unit += thread_count()) {
    const Index c = unit / chunks, first = (unit % chunks) * e.chunk;
    const Index end = first + e.chunk < n ? first + e.chunk : n;
    double partial = 0, run = 0;
    for (Index k = first; k < end; ++k) {
      const Index i = k % e.inner;
      const Index at = i + e.inner * (c + e.channels * (k / e.inner));
      if (b != nullptr) {
        run += a[at] * (b[at] - center[c]);
      } else if (center != nullptr) {
        const double d = a[at] - center[c];
        run += d * d;
      } else {
        run += a[at];
      }
      if (i + 1 == e.inner || k + 1 == end) {  // the run ends
        partial += b != nullptr ? run * factor[c] : run;
        run = 0;
      }
    }
    partials[unit] = partial;
  }
}

LCNN_KERNEL void channel_affine_kernel(ChannelRuns e, const float* x, const float* multiplier,
                                       const float* shift, float* y) {
  const Index total = e.per_channel() * e.channels;
  for (Index k = thread_index(); k < total; k += thread_count()) {
    const Index c = (k / e.inner) % e.channels;
    y[k] = x[k] * multiplier[c] + shift[c];
  }
}

LCNN_KERNEL void channel_input_gradient_kernel(ChannelRuns e, const float* x, const float* g,
                                               const float* scale, const float* centered,
                                               const float* slope, const float* mean,
                                               float* dx) {
  const Index total = e.per_channel() * e.channels;
  for (Index k = thread_index(); k < total; k += thread_count()) {
    const Index c = (k / e.inner) % e.channels;
    dx[k] = scale[c] * (g[k] - centered[c] - slope[c] * (x[k] - mean[c]));
  }
}

LCNN_KERNEL void penalty_partials_kernel(const float* w, Index n, double l1, double l2,
                                        Index chunk, double* partials) {
  const Index chunks = (n + chunk - 1) / chunk;
  for (Index u = thread_index(); u < chunks; u += thread_count()) {
    double total = 0;
    const Index end = (u + 1) * chunk < n ? (u + 1) * chunk : n;
    for (Index i = u * chunk; i < end; ++i) {
      const double v = w[i];
      total += l1 * (v < 0 ? -v : v) + l2 * v * v;
    }
    partials[u] = total;
  }
}

LCNN_KERNEL void add_penalty_gradient_kernel(const float* w, float* g, Index n, float l1,
                                             float two_l2) {
  for (Index i = thread_index(); i < n; i += thread_count()) {
    g[i] += penalty_gradient(w[i], l1, two_l2);
  }
}

LCNN_KERNEL void optimizer_kernel(UpdateRule<float> rule, float* values, const float* gradient,
                                  float* slots, Index n) {
  for (Index i = thread_index(); i < n; i += thread_count()) {
    update_parameter(rule, values, gradient, slots, n, i);
  }
}

}  // namespace

void gather_features(const Index* source, Index features, Index batch, const float* in,
                     float* out) {
  launch(blocks_for(features * batch), kThreadsPerBlock, gather_kernel, source, features, batch, in,
         out);
}

void scatter_features(const Index* source, Index features, Index batch, const float* grad_out,
                      float* grad_in) {
  launch(blocks_for(features * batch), kThreadsPerBlock, scatter_kernel, source, features, batch,
         grad_out, grad_in);
}

void activate(Activation activation, float* values, Index n) {
  launch(blocks_for(n), kThreadsPerBlock, activate_kernel, activation, values, n);
}

void softmax(float* values, Index len, Index stride) {
  launch(blocks_for(stride), kThreadsPerBlock, softmax_kernel, values, len, stride);
}

void activation_gradient(Activation activation, const float* z, const float* y, const float* grad_y,
                         float* grad_z, Index n) {
  launch(blocks_for(n), kThreadsPerBlock, activation_gradient_kernel, activation, z, y, grad_y,
         grad_z, n);
}

void softmax_gradient(const float* y, const float* grad_y, float* grad_z, Index len, Index stride) {
  launch(blocks_for(stride), kThreadsPerBlock, softmax_gradient_kernel, y, grad_y, grad_z, len,
         stride);
}

void multiply(const float* a, const float* b, float* out, Index n) {
  launch(blocks_for(n), kThreadsPerBlock, multiply_kernel, a, b, out, n);
}

void broadcast_bias(const float* bias, Index rows, Index features, float* out) {
  launch(blocks_for(rows * features), kThreadsPerBlock, broadcast_bias_kernel, bias, rows, features,
         out);
}

void column_sums(const float* matrix, Index rows, Index cols, Index ld, float* sums) {
  launch(blocks_for(cols), kThreadsPerBlock, column_sums_kernel, matrix, rows, cols, ld, sums);
}

void local_patches(const LocalShape& shape, Index batch, Index first, Index count,
                   const float* input, float* patches) {
  launch(blocks_for(count * shape.patch() * batch), kThreadsPerBlock, local_patches_kernel, shape,
         batch, first, count, input, patches);
}

void local_bias(const LocalShape& shape, Index batch, const float* bias, float* output) {
  launch(blocks_for(shape.positions() * shape.filters * batch), kThreadsPerBlock, local_bias_kernel,
         shape, batch, bias, output);
}

void local_forward_direct(const LocalShape& shape, Index batch, const float* input,
                          const float* kernel, const float* bias, float* output) {
  launch(blocks_for(shape.positions() * shape.filters * batch), kThreadsPerBlock,
         local_forward_direct_kernel, shape, batch, input, kernel, bias, output);
}

void local_kernel_gradient_direct(const LocalShape& shape, Index batch, const float* input,
                                  const float* grad_output, float* grad_kernel) {
  launch(blocks_for(shape.positions() * shape.filters * shape.patch()), kThreadsPerBlock,
         local_kernel_gradient_kernel, shape, batch, input, grad_output, grad_kernel);
}

void local_bias_gradient(const LocalShape& shape, Index batch, const float* grad_output,
                         float* grad_bias) {
  launch(blocks_for(shape.positions() * shape.filters), kThreadsPerBlock,
         local_bias_gradient_kernel, shape, batch, grad_output, grad_bias);
}

void local_input_gradient(const LocalShape& shape, Index batch, const float* patch_gradients,
                          const float* grad_output, const float* kernel, float* grad_input) {
  launch(blocks_for(shape.inputs() * batch), kThreadsPerBlock, local_input_gradient_kernel, shape,
         batch, patch_gradients, grad_output, kernel, grad_input);
}

void pool_forward(const LocalShape& shape, bool max, Index batch, const float* input,
                  float* output) {
  launch(blocks_for(shape.positions() * shape.channels * batch), kThreadsPerBlock,
         pool_forward_kernel, shape, max, batch, input, output);
}

void pool_backward(const LocalShape& shape, bool max, bool split_ties, Index batch,
                   const float* input, const float* grad_output, float* grad_input) {
  launch(blocks_for(shape.channels * batch), kThreadsPerBlock, pool_backward_kernel, shape, max,
         split_ties, batch, input, grad_output, grad_input);
}

void conv_forward(const LocalShape& shape, Index batch, const float* input, const float* kernel,
                  const float* bias, float* output) {
  launch(blocks_for(shape.positions() * shape.filters * batch), kThreadsPerBlock,
         conv_forward_kernel, shape, batch, input, kernel, bias, output);
}

void conv_kernel_gradient(const LocalShape& shape, Index batch, const float* input,
                          const float* grad_output, float* grad_kernel) {
  const Index weights =
      shape.kernel_rows * shape.kernel_cols * (shape.channels / shape.groups) * shape.filters;
  launch(blocks_for(weights), kThreadsPerBlock, conv_kernel_gradient_kernel, shape, batch, input,
         grad_output, grad_kernel);
}

void conv_bias_gradient(const LocalShape& shape, Index batch, const float* grad_output,
                        float* grad_bias) {
  launch(blocks_for(shape.filters), kThreadsPerBlock, conv_bias_gradient_kernel, shape, batch,
         grad_output, grad_bias);
}

void conv_input_gradient(const LocalShape& shape, Index batch, const float* grad_output,
                         const float* kernel, float* grad_input) {
  launch(blocks_for(shape.inputs() * batch), kThreadsPerBlock, conv_input_gradient_kernel, shape,
         batch, grad_output, kernel, grad_input);
}

void channel_partial_sums(const ChannelRuns& runs, const float* a, const float* b,
                          const double* center, const double* factor, double* partials) {
  launch(blocks_for(runs.channels * runs.chunks()), kThreadsPerBlock, channel_partial_sums_kernel,
         runs, a, b, center, factor, partials);
}

void channel_affine(const ChannelRuns& runs, const float* x, const float* multiplier,
                    const float* shift, float* y) {
  launch(blocks_for(runs.per_channel() * runs.channels), kThreadsPerBlock, channel_affine_kernel,
         runs, x, multiplier, shift, y);
}

void channel_input_gradient(const ChannelRuns& runs, const float* x, const float* g,
                            const float* scale, const float* centered, const float* slope,
                            const float* mean, float* dx) {
  launch(blocks_for(runs.per_channel() * runs.channels), kThreadsPerBlock,
         channel_input_gradient_kernel, runs, x, g, scale, centered, slope, mean, dx);
}

void penalty_partials(const float* w, Index n, double l1, double l2, Index chunk,
                      double* partials) {
  launch(blocks_for((n + chunk - 1) / chunk), kThreadsPerBlock, penalty_partials_kernel, w, n, l1,
         l2, chunk, partials);
}

void add_penalty_gradient(const float* w, float* g, Index n, float l1, float two_l2) {
  launch(blocks_for(n), kThreadsPerBlock, add_penalty_gradient_kernel, w, g, n, l1, two_l2);
}

void optimizer_step(const UpdateRule<float>& rule, float* values, const float* gradient,
                    float* slots, Index n) {
  launch(blocks_for(n), kThreadsPerBlock, optimizer_kernel, rule, values, gradient, slots, n);
}

}  // namespace cuda
}  // namespace lcnn
