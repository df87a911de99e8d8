#include "dropout.hpp"

#include <stdexcept>
#include <utility>

#include "random.hpp"

namespace lcnn {

template <typename T>
void dropout_mask(const Shape& shape, double rate, const std::vector<bool>& shared,
                  std::uint64_t salt, std::uint64_t seed, std::vector<T>& mask) {
  // Draw one value per cell of the noise shape, then spread it.
  Shape noise = shape;
  for (std::size_t a = 0; a < noise.rank(); ++a) {
    if (shared[a]) noise.dims[a] = 1;
  }
  Rng rng(seed ^ (salt * 0x9E3779B97F4A7C15ULL));
  const T scale = T(1) / T(1 - rate);
  std::vector<T> draws(static_cast<std::size_t>(noise.size()));
  for (T& d : draws) d = rng.uniform() >= rate ? scale : T(0);
  mask.resize(static_cast<std::size_t>(shape.size()));
  std::vector<index_t> index(shape.rank(), 0);
  for (std::size_t k = 0; k < mask.size(); ++k) {
    index_t cell = 0;
    for (std::size_t a = shape.rank(); a-- > 0;) {
      cell = cell * noise[a] + (shared[a] ? 0 : index[a]);
    }
    mask[k] = draws[static_cast<std::size_t>(cell)];
    for (std::size_t a = 0; a < index.size() && ++index[a] == shape[a]; ++a) index[a] = 0;
  }
}

template <typename T>
Dropout<T>::Dropout(const Shape& input, double rate, std::vector<bool> shared,
                    std::uint64_t salt)
    : input_(input), rate_(rate), shared_(std::move(shared)), salt_(salt) {
  if (!(rate_ >= 0 && rate_ < 1)) throw std::invalid_argument("dropout rate must be in [0, 1)");
  if (shared_.size() != input_.rank() + 1) {
    throw std::invalid_argument("dropout needs one noise_shape flag per axis");
  }
}

template <typename T>
void Dropout<T>::forward(const Tensor<T>& input, Tensor<T>& output, const Context& ctx) {
  output = input;
  if (!ctx.training || rate_ == 0) {
    mask_.clear();  // the identity, also for backward()
    return;
  }
  dropout_mask(input.shape, rate_, shared_, salt_, ctx.seed, mask_);
  for (std::size_t k = 0; k < mask_.size(); ++k) output.data[k] *= mask_[k];
}

template <typename T>
void Dropout<T>::backward(const Tensor<T>&, const Tensor<T>&, const Tensor<T>& grad_output,
                          Tensor<T>* grad_input, const Context&, bool) {
  if (grad_input == nullptr) return;
  *grad_input = grad_output;
  for (std::size_t k = 0; k < mask_.size(); ++k) grad_input->data[k] *= mask_[k];
}

template void dropout_mask<float>(const Shape&, double, const std::vector<bool>&, std::uint64_t,
                                  std::uint64_t, std::vector<float>&);
template void dropout_mask<double>(const Shape&, double, const std::vector<bool>&, std::uint64_t,
                                   std::uint64_t, std::vector<double>&);
template class Dropout<float>;
template class Dropout<double>;

}  // namespace lcnn
