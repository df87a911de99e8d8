// Geometry of windowed layers (locally connected layers and convolutions),
// and the maps between a locally connected layer's weight layout and the
// three Keras layouts (KERAS_SEMANTICS.md sections 2 and 3).
//
// A 1D layer is a 2D layer whose column axis has length 1: with column-major
// storage (B, L, C) and (B, L, 1, C) are the same bytes, and so are all the
// Keras weight layouts once their size-1 axes are dropped.
#pragma once

#include <string>
#include <vector>

#include "tensor.hpp"

namespace lcnn {

enum class Padding { valid, same, causal };
enum class DataFormat { channels_last, channels_first };
// Where "same" puts the windows. Keras's locally connected layers start
// window r at r * s - floor(k / 2); TensorFlow's convolutions and pooling pad
// max((out - 1) * s + k - n, 0) in all, the smaller half before. The two
// agree only for odd k with stride 1.
enum class SamePadding { locally_connected, convolution };

Padding parse_padding(const std::string& name);
DataFormat parse_data_format(const std::string& name);
SamePadding parse_same_padding(const std::string& name);

// One spatial axis: output r reads input taps first(r) + i * dilation for
// i in [0, kernel), of which those inside [0, input) are connected.
struct AxisWindow {
  index_t input = 1, kernel = 1, stride = 1, dilation = 1, pad_before = 0, output = 1;

  // A locally connected layer's axis (Keras's output length; may be <= 0 for
  // a kernel larger than the input). Its "same" centres window r on
  // r * stride: floor(kernel / 2) taps before; with SamePadding::convolution
  // (pooling) it pads as convolution() does.
  static AxisWindow make(index_t input, index_t kernel, index_t stride, Padding padding,
                         SamePadding same = SamePadding::locally_connected);
  // A convolution's axis as TensorFlow pads it: "same" puts half of the total
  // padding max((out - 1) * stride + span - input, 0) before (the odd one
  // after), "causal" the whole span - 1 before.
  static AxisWindow convolution(index_t input, index_t kernel, index_t stride, index_t dilation,
                                Padding padding);

  // Input extent of one window.
  index_t span() const { return (kernel - 1) * dilation + 1; }
  index_t first(index_t r) const { return r * stride - pad_before; }
  // Input index of tap i of output r (maybe outside the input).
  index_t at(index_t r, index_t i) const { return first(r) + i * dilation; }
  // Connected taps of output r are kernel indices [tap_begin(r), tap_end(r)).
  index_t tap_begin(index_t r) const;
  index_t tap_end(index_t r) const;
  index_t connected(index_t r) const { return tap_end(r) - tap_begin(r); }
};

// Offsets, in units of the batch size, of one step along each axis of the
// engine's column-major input and output tensors; an output position
// p = row + output rows * col.
struct TensorStrides {
  index_t in_row, in_col, in_channel, out_position, out_filter;
};

// What locally connected layers and convolutions share: the windows along
// rows and columns (a 1D layer has one column), channels, filters and the
// data format.
struct WindowGeometry {
  AxisWindow rows, cols;
  index_t channels = 1, filters = 1;
  DataFormat format = DataFormat::channels_last;
  bool one_d = false;

  index_t positions() const { return rows.output * cols.output; }
  index_t taps() const { return rows.kernel * cols.kernel; }
  index_t patch() const { return taps() * channels; }

  // Input and output shapes without the batch axis, in Keras order.
  Shape input_shape() const;
  Shape output_shape() const;
  TensorStrides strides() const;

 protected:
  // Throws std::invalid_argument, naming `layer`, unless every size is positive.
  void validate_sizes(const std::string& layer) const;
};

struct LocalGeometry : WindowGeometry {
  // Throws std::invalid_argument unless every size is positive.
  void validate() const { validate_sizes("locally connected layer"); }

  // lcnn's kernel: for each position p = r * OC + c, an F x (K * C) block,
  // filter-major, taps ordered (i, j, channel). Unconnected taps hold zero.
  index_t kernel_size() const { return positions() * filters * patch(); }
  // lcnn's bias: the value added to output (p, o), at p * F + o.
  index_t bias_size() const { return positions() * filters; }

  // Shapes of the Keras arrays returned by get_weights().
  Shape keras_kernel_shape(int implementation) const;
  Shape keras_bias_shape() const;
};

// Keras layout <-> lcnn layout. Keras arrays are column-major with the Keras
// dims, as R holds them. Unconnected Keras entries are ignored on import and
// written as zero on export.
template <typename T>
void kernel_from_keras(const LocalGeometry& g, int implementation, const double* keras, T* lcnn);
template <typename T>
void kernel_to_keras(const LocalGeometry& g, int implementation, const T* lcnn, double* keras);
template <typename T>
void bias_from_keras(const LocalGeometry& g, const double* keras, T* lcnn);
template <typename T>
void bias_to_keras(const LocalGeometry& g, const T* lcnn, double* keras);

// Sets the unconnected taps of an lcnn-layout kernel to zero.
template <typename T>
void zero_unconnected(const LocalGeometry& g, T* lcnn);

}  // namespace lcnn
