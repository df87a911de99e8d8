// Max and average pooling, 1D and 2D, local and global, as TensorFlow's:
// windows (with TensorFlow's "same" padding) from a LocalGeometry with one
// output channel per input channel; padded taps take no part (the average
// divides by the taps inside the input, the maximum ignores the others).
#pragma once

#include <string>
#include <vector>

#include "layer.hpp"
#include "local_geometry.hpp"

namespace lcnn {

enum class PoolMode { max, average };
// Where the gradient of a maximum goes when several taps hold it:
// TensorFlow's max pooling gives it to the first in row-major window order,
// its reduce_max (Keras's global max pooling) splits it evenly among them.
enum class MaxTies { first, split };

PoolMode parse_pool_mode(const std::string& name);
MaxTies parse_max_ties(const std::string& name);

template <typename T>
class Pooling : public Layer<T> {
 public:
  // `geometry.filters` must equal its channels. `output` is the geometry's
  // output shape, or just (channels) when there is a single output position
  // (global pooling without keepdims): the same values in the same order.
  Pooling(const LocalGeometry& geometry, PoolMode mode, const Shape& output,
          MaxTies ties = MaxTies::first);

  Shape input_shape() const override { return geometry_.input_shape(); }
  Shape output_shape() const override { return output_; }
  void forward(const Tensor<T>& input, Tensor<T>& output, const Context& ctx) override;
  void backward(const Tensor<T>& input, const Tensor<T>& output, const Tensor<T>& grad_output,
                Tensor<T>* grad_input, const Context& ctx, bool through_logits) override;
  std::vector<ParameterBlock<T>>& parameters() override { return parameters_; }
  const LocalGeometry& geometry() const { return geometry_; }
  PoolMode mode() const { return mode_; }
  MaxTies ties() const { return ties_; }

 private:
  // Memory offsets, in units of the batch size B, of a row, a column and a
  // channel in a tensor of `rows` x `cols` positions in the data format.
  struct Strides {
    index_t row, col, channel;
  };
  Strides strides(index_t rows, index_t cols) const;
  // Calls body(channel, first sample, samples) for blocks that depend only
  // on the shapes, in parallel: each block owns its slice of the output and
  // of the input gradient, so the results never depend on the threads.
  template <typename Body>
  void for_each_slice(index_t batch, int threads, Body body) const;
  // Calls visit(feature) for the input feature of each tap of output (r, q)
  // in channel c inside the input, in row-major window order.
  template <typename Visit>
  void for_each_tap(index_t r, index_t q, index_t c, const Strides& in, Visit visit) const;

  LocalGeometry geometry_;
  PoolMode mode_;
  Shape output_;
  MaxTies ties_;
  std::vector<ParameterBlock<T>> parameters_;
};

}  // namespace lcnn
