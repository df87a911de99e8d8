#include "flatten.hpp"

#include <algorithm>
#include <stdexcept>

namespace lcnn {

template <typename T>
Flatten<T>::Flatten(const Shape& input, bool channels_first) : input_(input) {
  if (input_.rank() < 1 || input_.size() < 1) {
    throw std::invalid_argument("flatten needs a non-empty input");
  }
  // The axis order Keras flattens in: channels last, then C order.
  std::vector<std::size_t> order(input_.rank());
  for (std::size_t a = 0; a < order.size(); ++a) order[a] = a;
  if (channels_first && order.size() >= 2) std::rotate(order.begin(), order.begin() + 1, order.end());
  const index_t n = input_.size();
  target_.resize(static_cast<std::size_t>(n));
  std::vector<index_t> index(input_.rank(), 0);
  for (index_t f = 0; f < n; ++f) {
    index_t flat = 0;
    for (std::size_t a : order) flat = flat * input_[a] + index[a];
    target_[static_cast<std::size_t>(f)] = flat;
    for (std::size_t a = 0; a < index.size() && ++index[a] == input_[a]; ++a) index[a] = 0;
  }
}

template <typename T>
void Flatten<T>::forward(const Tensor<T>& input, Tensor<T>& output, const Context&) {
  if (input.shape != input_.with_batch(input.batch())) {
    throw std::invalid_argument("flatten expected input " + input_.to_string() +
                                " per sample, got " + input.shape.to_string());
  }
  const index_t B = input.batch();
  output.resize(output_shape().with_batch(B));
  for (std::size_t f = 0; f < target_.size(); ++f) {
    const T* src = input.data.data() + B * static_cast<index_t>(f);
    std::copy(src, src + B, output.data.data() + B * target_[f]);
  }
}

template <typename T>
void Flatten<T>::backward(const Tensor<T>& input, const Tensor<T>&, const Tensor<T>& grad_output,
                          Tensor<T>* grad_input, const Context&, bool) {
  if (grad_input == nullptr) return;
  const index_t B = input.batch();
  grad_input->resize(input.shape);
  for (std::size_t f = 0; f < target_.size(); ++f) {
    const T* src = grad_output.data.data() + B * target_[f];
    std::copy(src, src + B, grad_input->data.data() + B * static_cast<index_t>(f));
  }
}

template class Flatten<float>;
template class Flatten<double>;

}  // namespace lcnn
