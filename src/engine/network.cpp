#include "network.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

namespace lcnn {

template <typename T>
Network<T>::Network(std::vector<std::unique_ptr<Layer<T>>> layers)
    : layers_(std::move(layers)), activations_(layers_.size()), gradients_(layers_.size()) {
  if (layers_.empty()) throw std::invalid_argument("a network needs at least one layer");
  for (std::size_t i = 1; i < layers_.size(); ++i) {
    if (layers_[i]->input_shape() != layers_[i - 1]->output_shape()) {
      throw std::invalid_argument("layer " + std::to_string(i + 1) + " expects input " +
                                  layers_[i]->input_shape().to_string() + " but layer " +
                                  std::to_string(i) + " gives " +
                                  layers_[i - 1]->output_shape().to_string());
    }
  }
}

template <typename T>
const Tensor<T>& Network<T>::forward(const Tensor<T>& input, const Context& ctx) {
  const Tensor<T>* current = &input;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    layers_[i]->forward(*current, activations_[i], ctx);
    current = &activations_[i];
  }
  return *current;
}

template <typename T>
double Network<T>::activity_penalty(const std::vector<Penalty>& activity) const {
  double total = 0;
  for (std::size_t i = 0; i < activity.size(); ++i) {
    if (!activity[i].active()) continue;
    double sum = 0;
    for (T v : activations_[i].data) {
      sum += activity[i].l1 * std::abs(double(v)) + activity[i].l2 * double(v) * double(v);
    }
    total += sum / double(activations_[i].batch());
  }
  return total;
}

namespace {

// Adds the gradient of (l1 sum|y| + l2 sum y^2) / B to grad.
template <typename T>
void add_activity_gradient(const Penalty& p, const Tensor<T>& y, Tensor<T>& grad) {
  const T l1 = T(p.l1 / double(y.batch())), l2 = T(2 * p.l2 / double(y.batch()));
  for (std::size_t k = 0; k < y.data.size(); ++k) {
    const T v = y.data[k];
    grad.data[k] += l1 * (v > 0 ? T(1) : v < 0 ? T(-1) : T(0)) + l2 * v;
  }
}

}  // namespace

template <typename T>
void Network<T>::backward(const Tensor<T>& input, const Tensor<T>& grad_output,
                          Tensor<T>* grad_input, const Context& ctx, bool through_logits,
                          const std::vector<Penalty>& activity) {
  auto penalty_of = [&](std::size_t i) -> const Penalty* {
    return i < activity.size() && activity[i].active() ? &activity[i] : nullptr;
  };
  const Tensor<T>* grad = &grad_output;
  if (const Penalty* p = penalty_of(layers_.size() - 1)) {
    output_gradient_ = grad_output;
    add_activity_gradient(*p, activations_.back(), output_gradient_);
    grad = &output_gradient_;
  }
  for (std::size_t i = layers_.size(); i-- > 0;) {
    const Tensor<T>& in = i == 0 ? input : activations_[i - 1];
    Tensor<T>* grad_in = i == 0 ? grad_input : &gradients_[i];
    layers_[i]->backward(in, activations_[i], *grad, grad_in, ctx,
                         through_logits && i + 1 == layers_.size());
    if (i > 0) {
      if (const Penalty* p = penalty_of(i - 1)) add_activity_gradient(*p, activations_[i - 1], *grad_in);
    }
    grad = grad_in;
  }
}

namespace {

// Copies samples [start, start + count) of a column-major (n, ...) array into
// or out of a (count, ...) one: `features` runs of `count` contiguous values.
template <typename From, typename To>
void copy_rows(const From* from, index_t from_rows, To* to, index_t to_rows, index_t count,
               index_t features) {
  for (index_t f = 0; f < features; ++f) {
    const From* src = from + f * from_rows;
    std::transform(src, src + count, to + f * to_rows, [](From v) { return static_cast<To>(v); });
  }
}

}  // namespace

template <typename T>
void Network<T>::predict(const double* x, index_t n, index_t batch_size, const Context& ctx,
                         double* y) {
  if (batch_size < 1) throw std::invalid_argument("batch_size must be at least 1");
  if (ctx.threads < 1) throw std::invalid_argument("the thread count must be at least 1");
  Context inference = ctx;
  inference.training = false;
  inference.record = false;
  const index_t in_features = input_shape().size(), out_features = output_shape().size();
  Tensor<T> batch;
  for (index_t start = 0; start < n; start += batch_size) {
    const index_t count = std::min(batch_size, n - start);
    batch.resize(input_shape().with_batch(count));
    copy_rows(x + start, n, batch.data.data(), count, count, in_features);
    const Tensor<T>& out = forward(batch, inference);
    copy_rows(out.data.data(), count, y + start, n, count, out_features);
  }
}

template class Network<float>;
template class Network<double>;

}  // namespace lcnn
