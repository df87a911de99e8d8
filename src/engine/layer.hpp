// The engine's layer interface (after MiniDNN): a layer maps a batch tensor
// to a batch tensor, owns its parameters as flat blocks with their
// gradients, and computes those gradients in backward().
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "activation.hpp"
#include "convert.hpp"
#include "tensor.hpp"

namespace lcnn {

// A batch of a data set as R holds it (column-major, dims (n, shape...)):
// value i of the per-sample shape (in the column-major order of Tensor) of
// the batch's sample b at data[b + i * stride], stride being the set's n.
struct DoubleBatch {
  const double* data;
  index_t stride, count;
};

// A network output as predict() hands it to the layer that computes it
// (Layer::writes_result()): R's result array, laid out as a DoubleBatch,
// written with streaming stores where `stream` (streams_result()).
struct DoubleResult {
  double* data;
  index_t stride;
  bool stream;

  // Writes value `feature` of the batch's samples [0, count).
  template <typename T>
  void write(const T* values, index_t feature, index_t count) const {
    write_result(values, count, data + feature * stride, stride, count, 1, stream);
  }
};

struct Context {
  int threads = 1;  // >= 1; Network checks it
  bool training = false;   // dropout active
  bool record = false;     // layers keep what backward() and logits() need
  std::uint64_t seed = 0;  // randomness of this batch (dropout), drawn by the caller
  // Set by predict() only for a layer whose writes_result() is true.
  const DoubleResult* result = nullptr;
};

template <typename T>
struct ParameterBlock {
  std::string name;
  std::vector<T> values;
  // Sized with values once backward() has run, unless the layer applied
  // the optimizer's update in backward() (see update_in_backward()).
  std::vector<T> gradient;
};

// The optimizer's step for parts of a layer's parameter blocks, handed to
// layers that apply it in backward() as soon as a part's gradient is final,
// while that part and its gradient are still in cache, instead of writing
// the gradient out for a pass of its own over the whole block.
template <typename T>
class ParameterUpdate {
 public:
  virtual ~ParameterUpdate() = default;
  // Updates parameters [start, start + count) of the layer's block `block`
  // from their gradient, gradient[0, count), which it may overwrite.
  virtual void apply(std::size_t block, index_t start, index_t count, T* gradient) = 0;
};

template <typename T>
class Layer {
 public:
  virtual ~Layer() = default;
  // Shapes without the batch axis.
  virtual Shape input_shape() const = 0;
  virtual Shape output_shape() const = 0;
  // With ctx.record, keeps what backward() needs (pre-activations, masks).
  virtual void forward(const Tensor<T>& input, Tensor<T>& output, const Context& ctx) = 0;
  // From dLoss/dOutput of the last recording forward(), overwrites each
  // parameter's gradient and, unless grad_input is null, sets dLoss/dInput.
  // With `through_logits`, grad_output is already dLoss/dPre-activation (the
  // loss took the layer's logits) and the activation is skipped.
  virtual void backward(const Tensor<T>& input, const Tensor<T>& output,
                        const Tensor<T>& grad_output, Tensor<T>* grad_input,
                        const Context& ctx, bool through_logits) = 0;
  virtual std::vector<ParameterBlock<T>>& parameters() = 0;
  // Inference on a network input's batch as R holds it, for layers that
  // copy their input into a layout of their own anyway: they convert into
  // it straight from R's doubles, and the batch is never written as a
  // tensor in T and read back. Returns false, having done nothing, where
  // the layer has no such path or ctx.record is set; the caller then
  // converts the batch for forward().
  virtual bool forward_from(const DoubleBatch& /* input */, Tensor<T>& /* output */,
                            const Context& /* ctx */) {
    return false;
  }
  // Asks the layer to apply `update` to all its parameters in the
  // following backward() calls (null: to stop). Returns whether it will;
  // it then leaves its blocks' gradients empty.
  virtual bool update_in_backward(ParameterUpdate<T>* /* update */) { return false; }
  // Whether forward() and forward_from(), given a ctx.result, write their
  // output there, activated, and leave `output` as it was. The float output
  // is then never written and read back: predict() asks this of a layer
  // whose output is a network output and read by nothing else.
  virtual bool writes_result() const { return false; }
  // The network calls these two for every layer; layers that combine several
  // tensors (merges) override them, the others take their one input.
  // grad_inputs[i] may be null where no gradient is needed.
  virtual void forward_inputs(const std::vector<const Tensor<T>*>& inputs, Tensor<T>& output,
                              const Context& ctx) {
    forward(*inputs.front(), output, ctx);
  }
  virtual void backward_inputs(const std::vector<const Tensor<T>*>& inputs,
                               const Tensor<T>& output, const Tensor<T>& grad_output,
                               const std::vector<Tensor<T>*>& grad_inputs, const Context& ctx,
                               bool through_logits) {
    backward(*inputs.front(), output, grad_output, grad_inputs.front(), ctx, through_logits);
  }
  virtual std::vector<Shape> input_shapes() const { return {input_shape()}; }
  // The output activation and, after a recording forward(), its input.
  virtual Activation activation() const { return Activation::linear; }
  // Whether backward() reads the `output` it is given (with this
  // through_logits): where it does not, a loss may write its gradient over
  // the output (Network::output_for_gradient()).
  virtual bool backward_reads_output(bool /* through_logits */) const { return true; }
  virtual const Tensor<T>* logits() const { return nullptr; }
};

}  // namespace lcnn
