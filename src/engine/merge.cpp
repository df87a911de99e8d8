#include "merge.hpp"

#include <algorithm>
#include <stdexcept>

namespace lcnn {

MergeKind parse_merge(const std::string& name) {
  if (name == "concatenate") return MergeKind::concatenate;
  if (name == "add") return MergeKind::add;
  if (name == "subtract") return MergeKind::subtract;
  if (name == "multiply") return MergeKind::multiply;
  if (name == "average") return MergeKind::average;
  if (name == "maximum") return MergeKind::maximum;
  if (name == "minimum") return MergeKind::minimum;
  throw std::invalid_argument("unknown merge '" + name + "'");
}

template <typename T>
Merge<T>::Merge(MergeKind kind, std::vector<Shape> inputs, std::size_t axis)
    : kind_(kind), inputs_(std::move(inputs)), axis_(axis) {
  if (inputs_.empty()) throw std::invalid_argument("a merge needs at least one input");
  if (kind_ == MergeKind::subtract && inputs_.size() != 2) {
    throw std::invalid_argument("subtract needs exactly two inputs");
  }
  output_ = inputs_.front();
  if (kind_ == MergeKind::concatenate && axis_ >= output_.rank()) {
    throw std::invalid_argument("the concatenation axis is beyond the inputs' rank");
  }
  for (std::size_t i = 1; i < inputs_.size(); ++i) {
    Shape a = inputs_[i], b = inputs_.front();
    if (kind_ == MergeKind::concatenate && a.rank() == b.rank()) {
      output_.dims[axis_] += a.dims[axis_];
      a.dims[axis_] = b.dims[axis_] = 0;
    }
    if (a != b) {
      throw std::invalid_argument("merge inputs " + inputs_.front().to_string() + " and " +
                                  inputs_[i].to_string() + " do not fit");
    }
  }
}

// In the column-major batch tensor, the concatenation axis splits each
// input into `outer` runs of (its axis length × `inner`) contiguous values.
template <typename T>
void Merge<T>::forward_inputs(const std::vector<const Tensor<T>*>& inputs, Tensor<T>& output,
                              const Context&) {
  const index_t B = inputs.front()->batch();
  output.resize(output_.with_batch(B));
  T* out = output.data.data();
  const index_t n = output.shape.size();
  if (kind_ == MergeKind::concatenate) {
    index_t inner = B, outer = 1;
    for (std::size_t d = 0; d < axis_; ++d) inner *= output_.dims[d];
    for (std::size_t d = axis_ + 1; d < output_.rank(); ++d) outer *= output_.dims[d];
    for (index_t o = 0; o < outer; ++o) {
      for (const Tensor<T>* in : inputs) {
        const index_t run = inner * in->shape.dims[axis_ + 1];
        out = std::copy_n(in->data.data() + o * run, run, out);
      }
    }
    return;
  }
  std::copy_n(inputs.front()->data.data(), n, out);
  for (std::size_t i = 1; i < inputs.size(); ++i) {
    const T* x = inputs[i]->data.data();
    for (index_t k = 0; k < n; ++k) {
      switch (kind_) {
        case MergeKind::subtract: out[k] -= x[k]; break;
        case MergeKind::multiply: out[k] *= x[k]; break;
        case MergeKind::maximum: out[k] = std::max(out[k], x[k]); break;
        case MergeKind::minimum: out[k] = std::min(out[k], x[k]); break;
        default: out[k] += x[k];
      }
    }
  }
  if (kind_ == MergeKind::average) {
    const T scale = T(1) / T(inputs.size());
    for (index_t k = 0; k < n; ++k) out[k] *= scale;
  }
}

template <typename T>
void Merge<T>::backward_inputs(const std::vector<const Tensor<T>*>& inputs,
                               const Tensor<T>& output, const Tensor<T>& grad_output,
                               const std::vector<Tensor<T>*>& grad_inputs, const Context&,
                               bool) {
  const index_t B = output.batch(), n = output.shape.size();
  const T* g = grad_output.data.data();
  if (kind_ == MergeKind::concatenate) {
    index_t inner = B, outer = 1, offset = 0;
    for (std::size_t d = 0; d < axis_; ++d) inner *= output_.dims[d];
    for (std::size_t d = axis_ + 1; d < output_.rank(); ++d) outer *= output_.dims[d];
    const index_t out_run = inner * output_.dims[axis_];
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const index_t run = inner * inputs[i]->shape.dims[axis_ + 1];
      if (grad_inputs[i] != nullptr) {
        grad_inputs[i]->resize(inputs[i]->shape);
        for (index_t o = 0; o < outer; ++o) {
          std::copy_n(g + o * out_run + offset, run, grad_inputs[i]->data.data() + o * run);
        }
      }
      offset += run;
    }
    return;
  }
  // Maximum and minimum send the gradient to the first input holding the
  // extreme, as TensorFlow's pairwise gradients do when folded left.
  std::vector<std::size_t> winner;
  if (kind_ == MergeKind::maximum || kind_ == MergeKind::minimum) {
    winner.assign(static_cast<std::size_t>(n), 0);
    for (index_t k = 0; k < n; ++k) {
      for (std::size_t i = 0; i < inputs.size(); ++i) {
        if (inputs[i]->data[k] == output.data[k]) {
          winner[k] = i;
          break;
        }
      }
    }
  }
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    Tensor<T>* gi = grad_inputs[i];
    if (gi == nullptr) continue;
    gi->resize(inputs[i]->shape);
    T* dx = gi->data.data();
    for (index_t k = 0; k < n; ++k) {
      switch (kind_) {
        case MergeKind::subtract: dx[k] = i == 0 ? g[k] : -g[k]; break;
        case MergeKind::average: dx[k] = g[k] / T(inputs.size()); break;
        case MergeKind::maximum:
        case MergeKind::minimum: dx[k] = winner[k] == i ? g[k] : T(0); break;
        case MergeKind::multiply: {
          T product = g[k];
          for (std::size_t j = 0; j < inputs.size(); ++j) {
            if (j != i) product *= inputs[j]->data[k];
          }
          dx[k] = product;
          break;
        }
        default: dx[k] = g[k];
      }
    }
  }
}

template class Merge<float>;
template class Merge<double>;

}  // namespace lcnn
