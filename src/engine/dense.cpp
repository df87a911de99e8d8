#include "dense.hpp"

#include <stdexcept>
#include <utility>

#include "eigen_maps.hpp"
#include "gemm.hpp"
#include "parallel.hpp"

namespace lcnn {

namespace {

// Rows per parallel block of a (samples x features) product: a batch of 64
// makes two blocks, where 64 ran the forward pass and the input gradient
// of a usual batch on one thread. Each block packs the whole kernel again,
// so 16 cost more than it shared out (bench/NOTES.md).
constexpr index_t kRowBlock = 32;
// Columns per parallel block of the kernel gradient.
constexpr index_t kColumnBlock = 16;

}  // namespace

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
Shape Dense<T>::output_shape() const {
  Shape out = input_;
  out.dims.back() = units_;
  return out;
}

// Batch-innermost storage makes the input an (N x D) column-major matrix,
// N = batch x the axes before the last; blocks of rows run in parallel.
template <typename T>
void Dense<T>::forward(const Tensor<T>& input, Tensor<T>& output, const Context& ctx) {
  if (input.shape != input_.with_batch(input.batch())) {
    throw std::invalid_argument("dense layer expected input " + input_.to_string() +
                                " per sample, got " + input.shape.to_string());
  }
  const index_t D = input_.dims.back(), F = units_;
  const index_t N = input.shape.size() / D;
  output.resize(output_shape().with_batch(input.batch()));
  const T* x = input.data.data();
  const T* w = parameters_[0].values.data();
  Map<T> y(output.data.data(), N, F);
  const T* bias = parameters_.size() > 1 ? parameters_[1].values.data() : nullptr;
  for_each_block(N, kRowBlock, ctx.threads, [&](index_t start, index_t rows) {
    gemm(Op::none, Op::none, rows, F, D, x + start, N, w, D, y.data() + start, N, false);
    if (bias != nullptr) {
      y.middleRows(start, rows).rowwise() +=
          ConstRowMap<T>(bias, F);
    }
  });
  activation_.apply(output, ctx.record, ctx.threads);
}

template <typename T>
void Dense<T>::backward(const Tensor<T>& input, const Tensor<T>& output,
                        const Tensor<T>& grad_output, Tensor<T>* grad_input, const Context& ctx,
                        bool through_logits) {
  const Tensor<T>& grad_pre =
      activation_.pre_gradient(output, grad_output, through_logits, grad_pre_, ctx.threads);
  const index_t D = input_.dims.back(), F = units_;
  const index_t N = input.shape.size() / D;
  const T* x = input.data.data();
  const T* w = parameters_[0].values.data();
  ConstMap<T> g(grad_pre.data.data(), N, F);
  std::vector<T>& kernel_grad = parameters_[0].gradient;
  kernel_grad.resize(parameters_[0].values.size());
  for_each_block(F, kColumnBlock, ctx.threads, [&](index_t start, index_t cols) {
    gemm(Op::transpose, Op::none, D, cols, N, x, N, g.data() + start * N, N,
         kernel_grad.data() + start * D, D, false);
  });
  if (parameters_.size() > 1) {
    std::vector<T>& bias_grad = parameters_[1].gradient;
    bias_grad.resize(F);
    RowMap<T>(bias_grad.data(), F) = g.colwise().sum();
  }
  if (grad_input == nullptr) return;
  grad_input->resize(input.shape);
  T* dx = grad_input->data.data();
  for_each_block(N, kRowBlock, ctx.threads, [&](index_t start, index_t rows) {
    gemm(Op::none, Op::transpose, rows, D, F, g.data() + start, N, w, D, dx + start, N, false);
  });
}

template class Dense<float>;
template class Dense<double>;

}  // namespace lcnn
