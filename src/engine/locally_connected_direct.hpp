// Direct kernels of a locally connected layer for small per-position
// products (few filters times a small patch, e.g. one channel, one filter,
// kernel 5 on 50,000 positions). They copy no patch and call no GEMM: the
// loops read the input in place and vectorise over the batch, whose B
// samples are contiguous for every (position, channel). Work is split into
// blocks fixed by the problem size, and every value is summed in one fixed
// order, so results do not depend on the thread count.
//
// Weights are in lcnn's layout (LocalGeometry::kernel_size()); dilation is 1,
// as in every locally connected layer.
#pragma once

#include "layer.hpp"
#include "local_geometry.hpp"

namespace lcnn {

// Whether the direct kernels are faster than one GEMM per position for this
// geometry: true when filters * patch is small (bench/NOTES.md,
// "Small-shape path", has the measurements behind the threshold).
bool direct_path_fits(const LocalGeometry& g);

// Where direct_forward() reads its input and writes its output.
template <typename T>
struct DirectIO {
  const T* input = nullptr;
  // The output tensor, before the activation, or else R's result: each
  // filter's run of a position written there from a thread's scratch, with
  // `activation` applied (Layer::writes_result()).
  T* output = nullptr;
  const DoubleResult* result = nullptr;
  Activation activation = Activation::linear;
};

// output = input * kernel + bias for every position; `bias` may be null.
template <typename T>
void direct_forward(const LocalGeometry& g, index_t batch, const T* kernel, const T* bias,
                    const DirectIO<T>& io, int threads);

// The kernel gradient at connected taps (the caller zeroes the others) and,
// unless `bias_grad` is null, the bias gradient, from the gradient of the
// pre-activation output.
template <typename T>
void direct_parameter_gradients(const LocalGeometry& g, index_t batch, const T* input,
                                const T* grad_output, T* kernel_grad, T* bias_grad, int threads);

// The whole input gradient (every element written, zero where no window
// reads it). Each input element gathers its terms from the outputs whose
// windows read it, so threads never write the same element.
template <typename T>
void direct_input_gradient(const LocalGeometry& g, index_t batch, const T* grad_output,
                           const T* kernel, T* grad_input, int threads);

}  // namespace lcnn
