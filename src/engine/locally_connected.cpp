#include "locally_connected.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "eigen_maps.hpp"
#include "gemm.hpp"
#include "locally_connected_direct.hpp"
#include "parallel.hpp"

namespace lcnn {


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
void LocallyConnected<T>::gather_patch(const T* x, index_t B, index_t p, const TensorStrides& st,
                                       T* patch) const {
  const LocalGeometry& g = geometry_;
  const index_t r = p / g.cols.output, c = p % g.cols.output;
  const index_t k1 = g.cols.kernel, C = g.channels;
  for (index_t i = 0; i < g.rows.kernel; ++i) {
    const index_t ir = g.rows.first(r) + i;
    for (index_t j = 0; j < k1; ++j) {
      const index_t ic = g.cols.first(c) + j;
      const bool inside = ir >= 0 && ir < g.rows.input && ic >= 0 && ic < g.cols.input;
      for (index_t ci = 0; ci < C; ++ci) {
        T* column = patch + B * ((i * k1 + j) * C + ci);
        if (inside) {
          const T* src = x + B * (ir * st.in_row + ic * st.in_col + ci * st.in_channel);
          std::copy(src, src + B, column);
        } else {
          std::fill(column, column + B, T(0));
        }
      }
    }
  }
}

// For each output position p (in parallel): gather the patches of every
// sample into a B x (K*C) buffer (each column B contiguous samples), then one
// GEMM with the position's (K*C) x F block writes the B x F outputs straight
// into the output tensor. No batch-wide patch tensor.
template <typename T>
void LocallyConnected<T>::forward(const Tensor<T>& input, Tensor<T>& output, const Context& ctx) {
  const LocalGeometry& g = geometry_;
  if (input.shape != g.input_shape().with_batch(input.batch())) {
    throw std::invalid_argument("locally connected layer expected input " +
                                g.input_shape().to_string() + " per sample, got " +
                                input.shape.to_string());
  }
  const index_t B = input.batch();
  output.resize(g.output_shape().with_batch(B));
  if (B == 0) return;
  const TensorStrides st = g.strides();
  const index_t OR = g.rows.output, OC = g.cols.output, F = g.filters, KC = g.patch();
  const T* kernel = parameters_[0].values.data();
  const T* bias = parameters_.size() > 1 ? parameters_[1].values.data() : nullptr;
  if (direct_) {
    direct_forward(g, B, input.data.data(), kernel, bias, output.data.data(), ctx.threads);
    activation_.apply(output, ctx.record, ctx.threads);
    return;
  }

  parallel_region(g.positions(), ctx.threads, [&](WorkItems& items) {
    Matrix<T> patch(B, KC);
    for (index_t p; items.next(p);) {
      gather_patch(input.data.data(), B, p, st, patch.data());
      const index_t r = p / OC, c = p % OC;
      T* out_data = output.data.data() + B * st.out_position * (r + OR * c);
      gemm(Op::none, Op::none, B, F, KC, patch.data(), B, kernel + p * F * KC, KC, out_data,
           B * st.out_filter, false);
      if (bias != nullptr) {
        StridedMap<T> out(out_data, B, F, Eigen::OuterStride<>(B * st.out_filter));
        out.rowwise() += ConstRowMap<T>(bias + p * F, F);
      }
    }
  });
  activation_.apply(output, ctx.record, ctx.threads);
}

// Per position p: dW_p = X_p' G_p (zero at unconnected taps, whose patch
// columns are zero), db_p = column sums of G_p, and the input
// gradient G_p W_p' added back onto p's window. Windows of positions whose
// rows differ by at least ceil(k0 / s0) (or columns by ceil(k1 / s1)) do not
// overlap, so positions are processed in that many colour classes, one after
// another, each in parallel: no two threads add to the same input, and every
// input receives its terms in the same order whatever the thread count.
template <typename T>
void LocallyConnected<T>::backward(const Tensor<T>& input, const Tensor<T>& output,
                                   const Tensor<T>& grad_output, Tensor<T>* grad_input,
                                   const Context& ctx, bool through_logits) {
  const LocalGeometry& g = geometry_;
  const index_t B = input.batch();
  const Tensor<T>& grad_pre =
      activation_.pre_gradient(output, grad_output, through_logits, grad_pre_);
  const TensorStrides st = g.strides();
  const index_t OR = g.rows.output, OC = g.cols.output, F = g.filters, KC = g.patch();
  const index_t k1 = g.cols.kernel, C = g.channels;

  ParameterBlock<T>& kernel = parameters_[0];
  kernel.gradient.assign(kernel.values.size(), T(0));
  T* bias_grad = nullptr;
  if (parameters_.size() > 1) {
    parameters_[1].gradient.assign(parameters_[1].values.size(), T(0));
    bias_grad = parameters_[1].gradient.data();
  }
  if (direct_) {
    direct_parameter_gradients(g, B, input.data.data(), grad_pre.data.data(),
                               kernel.gradient.data(), bias_grad, ctx.threads);
    if (grad_input == nullptr) return;
    grad_input->resize(input.shape);
    direct_input_gradient(g, B, grad_pre.data.data(), kernel.values.data(),
                          grad_input->data.data(), ctx.threads);
    return;
  }
  if (grad_input != nullptr) {
    grad_input->resize(input.shape);
    std::fill(grad_input->data.begin(), grad_input->data.end(), T(0));
  }
  const index_t row_colours =
      grad_input ? std::min(OR, (g.rows.kernel + g.rows.stride - 1) / g.rows.stride) : 1;
  const index_t col_colours =
      grad_input ? std::min(OC, (g.cols.kernel + g.cols.stride - 1) / g.cols.stride) : 1;

  const int workers = workers_for(g.positions(), ctx.threads);
  std::vector<Matrix<T>> patches(workers, Matrix<T>(B, KC)), patch_grads(workers, Matrix<T>(B, KC));
  for (index_t colour = 0; colour < row_colours * col_colours; ++colour) {
    const index_t r0 = colour / col_colours, c0 = colour % col_colours;
    const index_t rows = (OR - r0 + row_colours - 1) / row_colours;
    const index_t cols = (OC - c0 + col_colours - 1) / col_colours;
    parallel_region(rows * cols, ctx.threads, [&](WorkItems& items) {
      Matrix<T>& patch = patches[items.worker()];
      Matrix<T>& patch_grad = patch_grads[items.worker()];
      for (index_t q; items.next(q);) {
        const index_t r = r0 + (q / cols) * row_colours, c = c0 + (q % cols) * col_colours;
        const index_t p = r * OC + c;
        const T* grad_data = grad_pre.data.data() + B * st.out_position * (r + OR * c);
        const index_t grad_stride = B * st.out_filter;
        ConstStridedMap<T> grad(grad_data, B, F, Eigen::OuterStride<>(grad_stride));
        gather_patch(input.data.data(), B, p, st, patch.data());
        gemm(Op::transpose, Op::none, KC, F, B, patch.data(), B, grad_data, grad_stride,
             kernel.gradient.data() + p * F * KC, KC, false);
        if (bias_grad != nullptr) {
          RowMap<T>(bias_grad + p * F, F) =
              grad.colwise().sum();
        }
        if (grad_input == nullptr) continue;
        gemm(Op::none, Op::transpose, B, KC, F, grad_data, grad_stride,
             kernel.values.data() + p * F * KC, KC, patch_grad.data(), B, false);
        for (index_t i = g.rows.tap_begin(r); i < g.rows.tap_end(r); ++i) {
          const index_t ir = g.rows.first(r) + i;
          for (index_t j = g.cols.tap_begin(c); j < g.cols.tap_end(c); ++j) {
            const index_t ic = g.cols.first(c) + j;
            for (index_t ci = 0; ci < C; ++ci) {
              T* dst = grad_input->data.data() +
                       B * (ir * st.in_row + ic * st.in_col + ci * st.in_channel);
              const T* src = patch_grad.data() + B * ((i * k1 + j) * C + ci);
              for (index_t b = 0; b < B; ++b) dst[b] += src[b];
            }
          }
        }
      }
    });
  }
}

template class LocallyConnected<float>;
template class LocallyConnected<double>;

}  // namespace lcnn
