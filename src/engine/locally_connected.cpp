#include "locally_connected.hpp"

#include <stdexcept>
#include <utility>

#include <Eigen/Core>

namespace lcnn {

template <typename T>
LocallyConnected<T>::LocallyConnected(const LocalGeometry& geometry, Activation activation,
                                      std::vector<T> kernel, std::vector<T> bias)
    : geometry_(geometry), activation_(activation) {
  geometry_.validate();
  if (static_cast<index_t>(kernel.size()) != geometry_.kernel_size()) {
    throw std::invalid_argument("locally connected kernel has " + std::to_string(kernel.size()) +
                                " values, expected " + std::to_string(geometry_.kernel_size()));
  }
  if (!bias.empty() && static_cast<index_t>(bias.size()) != geometry_.bias_size()) {
    throw std::invalid_argument("locally connected bias has " + std::to_string(bias.size()) +
                                " values, expected " + std::to_string(geometry_.bias_size()));
  }
  parameters_.push_back({"kernel", std::move(kernel)});
  if (!bias.empty()) parameters_.push_back({"bias", std::move(bias)});
}

// For each output position p (in parallel): gather the patch of every sample
// into a B x (K*C) column-major buffer (each column is B contiguous samples,
// zero where a tap falls outside the input), then one GEMM with the position's
// (K*C) x F block gives the B x F outputs, written straight into the output
// tensor with the data format's column stride. No batch-wide patch tensor.
template <typename T>
void LocallyConnected<T>::forward(const Tensor<T>& input, Tensor<T>& output, const Context& ctx) {
  using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
  using ConstMap = Eigen::Map<const Matrix>;
  using StridedMap = Eigen::Map<Matrix, Eigen::Unaligned, Eigen::OuterStride<>>;
  using RowVector = Eigen::Map<const Eigen::Matrix<T, 1, Eigen::Dynamic>>;

  const LocalGeometry& g = geometry_;
  if (input.shape != g.input_shape().with_batch(input.batch())) {
    throw std::invalid_argument("locally connected layer expected input " +
                                g.input_shape().to_string() + " per sample, got " +
                                input.shape.to_string());
  }
  const index_t B = input.batch();
  output.resize(g.output_shape().with_batch(B));
  if (B == 0) return;

  const bool last = g.format == DataFormat::channels_last;
  const index_t H = g.rows.input, W = g.cols.input, C = g.channels, F = g.filters;
  const index_t OR = g.rows.output, OC = g.cols.output, P = g.positions();
  const index_t k0 = g.rows.kernel, k1 = g.cols.kernel, KC = g.patch();
  // Offsets (in units of B) of input (row, col, channel) and output (p, filter).
  const index_t in_row = last ? 1 : C, in_col = last ? H : C * H, in_ch = last ? H * W : 1;
  const index_t out_pos = last ? 1 : F, out_filter = last ? P : 1;

  const T* x = input.data.data();
  T* y = output.data.data();
  const T* kernel = parameters_[0].values.data();
  const T* bias = parameters_.size() > 1 ? parameters_[1].values.data() : nullptr;
  const bool fuse_activation = is_elementwise(activation_);

#pragma omp parallel num_threads(ctx.threads)
  {
    Matrix patch(B, KC);
#pragma omp for schedule(static)
    for (index_t p = 0; p < P; ++p) {
      const index_t r = p / OC, c = p % OC;
      // Output position p's memory offset: column-major over (row, col).
      const index_t out_offset = B * out_pos * (r + OR * c);
      for (index_t i = 0; i < k0; ++i) {
        const index_t ir = g.rows.first(r) + i;
        for (index_t j = 0; j < k1; ++j) {
          const index_t ic = g.cols.first(c) + j;
          const bool inside = ir >= 0 && ir < H && ic >= 0 && ic < W;
          for (index_t ci = 0; ci < C; ++ci) {
            T* column = patch.data() + B * ((i * k1 + j) * C + ci);
            if (inside) {
              const T* src = x + B * (ir * in_row + ic * in_col + ci * in_ch);
              std::copy(src, src + B, column);
            } else {
              std::fill(column, column + B, T(0));
            }
          }
        }
      }
      ConstMap weights(kernel + p * F * KC, KC, F);
      StridedMap out(y + out_offset, B, F, Eigen::OuterStride<>(B * out_filter));
      out.noalias() = patch * weights;
      if (bias != nullptr) out.rowwise() += RowVector(bias + p * F, F);
      if (fuse_activation) {
        for (index_t o = 0; o < F; ++o) activate_elementwise(activation_, &out(0, o), B);
      }
    }
  }
  if (!fuse_activation) softmax_last_axis(output);
}

template class LocallyConnected<float>;
template class LocallyConnected<double>;

}  // namespace lcnn
