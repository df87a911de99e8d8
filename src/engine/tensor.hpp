// Shapes and tensors of the engine.
//
// Dimensions are kept in Keras order (batch first) and storage is column-major
// (first index fastest), which is exactly how R holds an array: an R array is
// already in engine layout, and the batch is the contiguous axis, so every
// per-position kernel works on runs of B samples.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "buffer.hpp"

namespace lcnn {

using index_t = std::int64_t;

struct Shape {
  std::vector<index_t> dims;

  index_t size() const {
    index_t n = 1;
    for (index_t d : dims) n *= d;
    return n;
  }
  std::size_t rank() const { return dims.size(); }
  index_t operator[](std::size_t i) const { return dims[i]; }
  bool operator==(const Shape& other) const { return dims == other.dims; }
  bool operator!=(const Shape& other) const { return dims != other.dims; }

  // The same shape with a batch axis of `batch` in front.
  Shape with_batch(index_t batch) const {
    Shape s;
    s.dims.reserve(dims.size() + 1);
    s.dims.push_back(batch);
    s.dims.insert(s.dims.end(), dims.begin(), dims.end());
    return s;
  }

  std::string to_string() const {
    std::string out = "(";
    for (std::size_t i = 0; i < dims.size(); ++i) {
      if (i > 0) out += ", ";
      out += std::to_string(dims[i]);
    }
    return out + ")";
  }
};

template <typename T>
struct Tensor {
  Shape shape;
  Buffer<T> data;

  void resize(const Shape& s) {
    shape = s;
    data.resize(static_cast<std::size_t>(s.size()));
  }
  index_t batch() const { return shape.dims.empty() ? 0 : shape.dims[0]; }
};

}  // namespace lcnn
