#include "reshaping.hpp"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>

#include "parallel.hpp"

namespace lcnn {

namespace {

// Features per parallel block: enough to amortize the scheduling, small
// enough to spread a flatten of a few hundred features over the threads.
constexpr index_t kFeatureBlock = 64;

std::vector<std::size_t> identity_order(std::size_t rank) {
  std::vector<std::size_t> order(rank);
  std::iota(order.begin(), order.end(), std::size_t{0});
  return order;
}

bool is_permutation_of_axes(const std::vector<std::size_t>& order, std::size_t rank) {
  std::vector<std::size_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  return sorted == identity_order(rank);
}

// Steps a column-major multi-index over `shape` to the next feature.
void advance(std::vector<index_t>& index, const Shape& shape) {
  for (std::size_t a = 0; a < index.size() && ++index[a] == shape[a]; ++a) index[a] = 0;
}

}  // namespace

std::vector<index_t> c_order_offsets(const Shape& shape, const std::vector<std::size_t>& order) {
  if (!is_permutation_of_axes(order, shape.rank())) {
    throw std::invalid_argument("axis order is not a permutation of the axes of " +
                                shape.to_string());
  }
  const index_t n = shape.size();
  std::vector<index_t> offsets(static_cast<std::size_t>(n));
  std::vector<index_t> index(shape.rank(), 0);
  for (index_t f = 0; f < n; ++f) {
    index_t flat = 0;
    for (std::size_t a : order) flat = flat * shape[a] + index[a];
    offsets[static_cast<std::size_t>(f)] = flat;
    advance(index, shape);
  }
  return offsets;
}

std::vector<index_t> c_order_sources(const Shape& input, const std::vector<std::size_t>& order,
                                     const Shape& output) {
  if (input.size() != output.size()) {
    throw std::invalid_argument("cannot lay out input " + input.to_string() + " (" +
                                std::to_string(input.size()) + " values) as " +
                                output.to_string() + " (" + std::to_string(output.size()) +
                                " values)");
  }
  const std::vector<index_t> in_offsets = c_order_offsets(input, order);
  std::vector<index_t> feature_at(in_offsets.size());
  for (std::size_t f = 0; f < in_offsets.size(); ++f) {
    feature_at[static_cast<std::size_t>(in_offsets[f])] = static_cast<index_t>(f);
  }
  std::vector<index_t> source = c_order_offsets(output, identity_order(output.rank()));
  for (index_t& s : source) s = feature_at[static_cast<std::size_t>(s)];
  return source;
}

template <typename T>
Gather<T>::Gather(const Shape& input, const Shape& output, std::vector<index_t> source)
    : input_(input), output_(output), source_(std::move(source)) {
  if (input_.rank() < 1 || input_.size() < 1 || output_.rank() < 1 || output_.size() < 1) {
    throw std::invalid_argument("cannot move values from input " + input_.to_string() +
                                " to output " + output_.to_string() + ": both need values");
  }
  if (static_cast<index_t>(source_.size()) != output_.size()) {
    throw std::invalid_argument("gather map has " + std::to_string(source_.size()) +
                                " entries for output " + output_.to_string());
  }
  std::vector<bool> used(static_cast<std::size_t>(input_.size()), false);
  index_t sources = 0;
  for (index_t s : source_) {
    if (s < 0) continue;
    if (s >= input_.size() || used[static_cast<std::size_t>(s)]) {
      throw std::invalid_argument("gather map reads input feature " + std::to_string(s) +
                                  " twice or outside input " + input_.to_string());
    }
    used[static_cast<std::size_t>(s)] = true;
    ++sources;
  }
  covers_input_ = sources == input_.size();
}

template <typename T>
void Gather<T>::forward(const Tensor<T>& input, Tensor<T>& output, const Context& ctx) {
  if (input.shape != input_.with_batch(input.batch())) {
    throw std::invalid_argument("layer expected input " + input_.to_string() +
                                " per sample, got " + input.shape.to_string());
  }
  const index_t B = input.batch();
  output.resize(output_.with_batch(B));
  const T* x = input.data.data();
  T* y = output.data.data();
  for_each_block(output_.size(), kFeatureBlock, ctx.threads, [&](index_t first, index_t count) {
    for (index_t g = first; g < first + count; ++g) {
      const index_t s = source_[static_cast<std::size_t>(g)];
      if (s < 0) {
        std::fill(y + B * g, y + B * (g + 1), T(0));
      } else {
        std::copy(x + B * s, x + B * (s + 1), y + B * g);
      }
    }
  });
}

template <typename T>
void Gather<T>::backward(const Tensor<T>& input, const Tensor<T>&, const Tensor<T>& grad_output,
                         Tensor<T>* grad_input, const Context& ctx, bool) {
  if (grad_input == nullptr) return;
  const index_t B = input.batch();
  grad_input->resize(input.shape);
  if (!covers_input_) std::fill(grad_input->data.begin(), grad_input->data.end(), T(0));
  const T* dy = grad_output.data.data();
  T* dx = grad_input->data.data();
  for_each_block(output_.size(), kFeatureBlock, ctx.threads, [&](index_t first, index_t count) {
    for (index_t g = first; g < first + count; ++g) {
      const index_t s = source_[static_cast<std::size_t>(g)];
      if (s >= 0) std::copy(dy + B * g, dy + B * (g + 1), dx + B * s);
    }
  });
}

template <typename T>
Reshape<T>::Reshape(const Shape& input, const Shape& output)
    : Gather<T>(input, output, c_order_sources(input, identity_order(input.rank()), output)) {}

namespace {

Shape permuted(const Shape& input, const std::vector<std::size_t>& dims) {
  if (!is_permutation_of_axes(dims, input.rank())) {
    throw std::invalid_argument("permute dims are not a permutation of the axes of " +
                                input.to_string());
  }
  Shape out;
  for (std::size_t a : dims) out.dims.push_back(input[a]);
  return out;
}

Shape padded(const Shape& input, const std::vector<index_t>& before,
             const std::vector<index_t>& after) {
  if (before.size() != input.rank() || after.size() != input.rank()) {
    throw std::invalid_argument("padding needs one amount per axis of " + input.to_string());
  }
  Shape out = input;
  for (std::size_t a = 0; a < input.rank(); ++a) out.dims[a] += before[a] + after[a];
  for (index_t d : out.dims) {
    if (d < 1) {
      throw std::invalid_argument("cropping input " + input.to_string() + " leaves no values");
    }
  }
  return out;
}

std::vector<index_t> padding_sources(const Shape& input, const std::vector<index_t>& before,
                                     const Shape& output) {
  std::vector<index_t> source(static_cast<std::size_t>(output.size()));
  std::vector<index_t> index(output.rank(), 0);
  for (index_t& s : source) {
    index_t flat = 0, stride = 1;
    for (std::size_t a = 0; a < index.size() && flat >= 0; ++a) {
      const index_t i = index[a] - before[a];
      flat = i < 0 || i >= input[a] ? -1 : flat + i * stride;
      stride *= input[a];
    }
    s = flat;
    advance(index, output);
  }
  return source;
}

}  // namespace

template <typename T>
Permute<T>::Permute(const Shape& input, const std::vector<std::size_t>& dims)
    : Gather<T>(input, permuted(input, dims), c_order_sources(input, dims, permuted(input, dims))) {}

template <typename T>
PadCrop<T>::PadCrop(const Shape& input, const std::vector<index_t>& before,
                    const std::vector<index_t>& after)
    : Gather<T>(input, padded(input, before, after),
                padding_sources(input, before, padded(input, before, after))) {}

#define LCNN_INSTANTIATE(T)      \
  template class Gather<T>;      \
  template class Reshape<T>;     \
  template class Permute<T>;     \
  template class PadCrop<T>;
LCNN_INSTANTIATE(float)
LCNN_INSTANTIATE(double)
#undef LCNN_INSTANTIATE

}  // namespace lcnn
