// Layers that only move values: flatten, reshape, permute, zero padding and
// cropping. Each is a Gather: every output feature (the B values of one
// per-sample index) is a copy of one input feature, or zero. The maps are
// built once from the shapes, in Keras's C (row-major) order, while the
// engine stores samples column-major (see tensor.hpp).
#pragma once

#include <cstddef>
#include <vector>

#include "layer.hpp"

namespace lcnn {

// For each feature of `shape` (at column-major offset f, as the engine holds
// a sample), its offset in C order when the axes are taken in `order`
// (outermost first): where a Keras reshape of that axis order puts it.
std::vector<index_t> c_order_offsets(const Shape& shape, const std::vector<std::size_t>& order);

// source[g] for a layer whose output (shape `output`, read in C order) holds
// the input's values in C order of the input axes taken in `order`.
std::vector<index_t> c_order_sources(const Shape& input, const std::vector<std::size_t>& order,
                                     const Shape& output);

template <typename T>
class Gather : public Layer<T> {
 public:
  // Output feature g is input feature source[g], or zero where source[g] is
  // -1. No input feature may feed two outputs, so backward() assigns rather
  // than adds and runs in parallel without races.
  Gather(const Shape& input, const Shape& output, std::vector<index_t> source);

  Shape input_shape() const override { return input_; }
  Shape output_shape() const override { return output_; }
  void forward(const Tensor<T>& input, Tensor<T>& output, const Context& ctx) override;
  void backward(const Tensor<T>& input, const Tensor<T>& output, const Tensor<T>& grad_output,
                Tensor<T>* grad_input, const Context& ctx, bool through_logits) override;
  std::vector<ParameterBlock<T>>& parameters() override { return parameters_; }
  const std::vector<index_t>& source() const { return source_; }
  bool covers_input() const { return covers_input_; }
  // Whether every output feature is an input feature and every input
  // feature one output feature: the gather only reorders them.
  bool permutes() const { return covers_input_ && output_.size() == input_.size(); }

 private:
  Shape input_, output_;
  std::vector<index_t> source_;
  bool covers_input_ = true;  // every input feature reaches the output
  std::vector<ParameterBlock<T>> parameters_;
};

// Keras's Reshape: the sample's values in C order, laid out in `output`
// (same size) in C order.
template <typename T>
class Reshape : public Gather<T> {
 public:
  Reshape(const Shape& input, const Shape& output);
};

// Keras's Permute: output axis a is input axis dims[a] (0-based here).
template <typename T>
class Permute : public Gather<T> {
 public:
  Permute(const Shape& input, const std::vector<std::size_t>& dims);
};

// Zero padding and cropping: axis a gains before[a] values in front and
// after[a] behind; negative amounts crop.
template <typename T>
class PadCrop : public Gather<T> {
 public:
  PadCrop(const Shape& input, const std::vector<index_t>& before,
          const std::vector<index_t>& after);
};

}  // namespace lcnn
