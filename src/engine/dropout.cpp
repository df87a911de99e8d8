#include "dropout.hpp"

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "eigen_maps.hpp"
#include "random.hpp"

namespace lcnn {

namespace {

// Bits<T>: an unsigned integer of T's size.
template <typename T>
using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;

// Stores `kept` (given by its bits) into *to where `keep`, else zero, as a
// select between integers: the draws decide at random, so a branch on them
// was mispredicted about as often as a value was dropped (a mask of 8,192
// values took 79 us instead of 25; bench/NOTES.md). GCC compiled the same
// select between two T values into a branch again.
template <typename T>
void store_kept_or_zero(bool keep, Bits<T> kept, T* to) {
  const Bits<T> bits = keep ? kept : Bits<T>(0);
  std::memcpy(to, &bits, sizeof bits);
}

// to = from times the mask, value by value, in one pass of Eigen's vectors
// (GCC left the plain loop one value at a time under R's flags).
template <typename T>
void masked(const Tensor<T>& from, const std::vector<T>& mask, Tensor<T>& to) {
  to.resize(from.shape);
  const index_t n = static_cast<index_t>(mask.size());
  Map<T>(to.data.data(), n, 1).array() =
      ConstMap<T>(from.data.data(), n, 1).array() * ConstMap<T>(mask.data(), n, 1).array();
}

}  // namespace

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
  Bits<T> kept;
  std::memcpy(&kept, &scale, sizeof kept);
  // A draw keeps its value where uniform() >= rate.
  const std::uint64_t bound = Rng::uniform_bound(rate);
  const auto fill = [&](std::vector<T>& to) {
    rng.draws(static_cast<index_t>(to.size()), [&](index_t k, std::uint64_t draw) {
      store_kept_or_zero((draw >> 11) >= bound, kept, &to[k]);
    });
  };
  mask.resize(static_cast<std::size_t>(shape.size()));
  if (noise.size() == shape.size()) {
    // No axis shares a draw (the usual noise shape): each value's cell is
    // its own index, and the draws go straight into the mask.
    fill(mask);
    return;
  }
  std::vector<T> draws(static_cast<std::size_t>(noise.size()));
  fill(draws);
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
  if (!ctx.training || rate_ == 0) {
    output = input;
    mask_.clear();  // the identity, also for backward()
    return;
  }
  dropout_mask(input.shape, rate_, shared_, salt_, ctx.seed, mask_);
  masked(input, mask_, output);
}

template <typename T>
void Dropout<T>::backward(const Tensor<T>&, const Tensor<T>&, const Tensor<T>& grad_output,
                          Tensor<T>* grad_input, const Context&, bool) {
  if (grad_input == nullptr) return;
  if (mask_.empty()) {
    *grad_input = grad_output;
  } else {
    masked(grad_output, mask_, *grad_input);
  }
}

template void dropout_mask<float>(const Shape&, double, const std::vector<bool>&, std::uint64_t,
                                  std::uint64_t, std::vector<float>&);
template void dropout_mask<double>(const Shape&, double, const std::vector<bool>&, std::uint64_t,
                                   std::uint64_t, std::vector<double>&);
template class Dropout<float>;
template class Dropout<double>;

}  // namespace lcnn
