// The engine's layer interface: a layer maps a batch tensor to a batch tensor
// and owns its parameters as flat blocks (the trainer adds backward passes).
#pragma once

#include <string>
#include <vector>

#include "tensor.hpp"

namespace lcnn {

struct Context {
  int threads = 1;  // >= 1; Network::predict checks it
};

template <typename T>
struct ParameterBlock {
  std::string name;
  std::vector<T> values;
};

template <typename T>
class Layer {
 public:
  virtual ~Layer() = default;
  // Shapes without the batch axis.
  virtual Shape input_shape() const = 0;
  virtual Shape output_shape() const = 0;
  virtual void forward(const Tensor<T>& input, Tensor<T>& output, const Context& ctx) = 0;
  virtual std::vector<ParameterBlock<T>>& parameters() = 0;
};

}  // namespace lcnn
