// The one boundary between the engine and the CUDA code (DESIGN.md §2):
// plain pointers and sizes only, so that nvcc never sees Eigen or Rcpp.
// device.cu (the device queries), runtime.cu (memory, copies, cuBLAS) and
// kernels.cu implement it with CUDA; device_stub.cpp, built when configure
// finds no usable nvcc, answers "built without CUDA". Compiled as C++ with
// LCNN_CUDA_EMULATE, the same .cu files run their kernels on the host
// (launch.hpp), which is how machines without a GPU test them.
//
// Every pointer below is device memory unless it says host. Everything
// is float32. Failures throw lcnn::cuda::Error; nothing exits the process.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "../engine/activation.hpp"
#include "../engine/optimizer_update.hpp"
#include "../engine/penalty_formula.hpp"

namespace lcnn {
namespace cuda {

// Whether devices can be used, and when not, what is missing.
enum class Availability {
  available,  // at least one device
  not_built,  // the package was built without CUDA
  no_driver,  // no NVIDIA driver is installed
  no_device,  // a driver but no device (or none visible, CUDA_VISIBLE_DEVICES)
  error       // the runtime failed otherwise: see DeviceReport::detail
};

struct Device {
  int index;                  // CUDA's device ordinal, from 0
  std::string name;
  std::size_t total_memory;   // bytes
  int major;                  // compute capability major.minor
  int minor;
};

struct DeviceReport {
  bool built_with_cuda;
  Availability availability;
  std::string detail;         // why no device, in words (CUDA's error string)
  int runtime_version;        // 1000 * major + 10 * minor, as CUDA; 0 when not built
  int driver_version;         // the newest CUDA the driver supports; 0 when none
  std::vector<Device> devices;  // empty unless available
};

// Queries the CUDA runtime each call. CUDA errors become the report's
// availability and detail; it never exits the process.
DeviceReport query_devices();

inline const char* availability_name(Availability availability) {
  switch (availability) {
    case Availability::available: return "available";
    case Availability::not_built: return "not_built";
    case Availability::no_driver: return "no_driver";
    case Availability::no_device: return "no_device";
    case Availability::error: return "error";
  }
  return "error";
}

// ---- Errors and memory (runtime.cu) ----

// A CUDA or cuBLAS call failed; the message names the call and CUDA's reason.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

void* allocate(std::size_t bytes);
void release(void* memory) noexcept;
void copy_to_device(void* device, const void* host, std::size_t bytes);
// Waits for the work queued before it.
void copy_to_host(void* host, const void* device, std::size_t bytes);
void copy_on_device(void* to, const void* from, std::size_t bytes);
void fill_zero(void* device, std::size_t bytes);
// Waits for the work queued so far (for timing).
void synchronize();

// Device memory for n values of T, owned: freed with the buffer.
template <typename T>
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(std::size_t n) : data_(n ? static_cast<T*>(allocate(n * sizeof(T))) : nullptr),
                                   size_(n) {}
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  Buffer& operator=(Buffer&& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    return *this;
  }
  ~Buffer() { release(data_); }

  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return size_; }
  // Keeps the memory when it is large enough already.
  void resize(std::size_t n) {
    if (n > size_) *this = Buffer(n);
  }
  void upload(const T* host, std::size_t n) {
    resize(n);
    copy_to_device(data_, host, n * sizeof(T));
  }
  void download(T* host, std::size_t n) const { copy_to_host(host, data_, n * sizeof(T)); }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

// ---- Matrix products (runtime.cu: cuBLAS, loaded on first use) ----
// Column-major, as BLAS: C = op(A) op(B) + beta C, op(X) = X or X'.

// Opens cuBLAS now rather than at the first product (so that its absence
// shows when a model is put on the device, not during training).
void open_blas();

void gemm(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k,
          const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta,
          float* c, std::int64_t ldc);
// `count` such products; a, b and c are device arrays of device pointers.
void gemm_batched(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n,
                  std::int64_t k, const float* const* a, std::int64_t lda,
                  const float* const* b, std::int64_t ldb, float beta, float* const* c,
                  std::int64_t ldc, std::int64_t count);

// ---- Kernels (kernels.cu) ----
// Tensors are the engine's: column-major, batch first (tensor.hpp), so
// feature f of sample b of a batch of B is at f * B + b.

// out feature g = in feature source[g], or zero where source[g] < 0
// (flatten, reshape, permute, padding, cropping). source: device.
void gather_features(const std::int64_t* source, std::int64_t features, std::int64_t batch,
                     const float* in, float* out);
// The gradient of gather_features(): grad_in feature source[g] = grad_out
// feature g (no input feeds two outputs); the caller zeroes grad_in first
// where some input feeds none.
void scatter_features(const std::int64_t* source, std::int64_t features, std::int64_t batch,
                      const float* grad_out, float* grad_in);

// y = a(y) elementwise; softmax over groups of `len` values `stride` apart
// (the last Keras axis).
void activate(Activation activation, float* values, std::int64_t n);
void softmax(float* values, std::int64_t len, std::int64_t stride);
// dLoss/dz from z, y = a(z) and dLoss/dy.
void activation_gradient(Activation activation, const float* z, const float* y,
                         const float* grad_y, float* grad_z, std::int64_t n);
void softmax_gradient(const float* y, const float* grad_y, float* grad_z, std::int64_t len,
                      std::int64_t stride);

// out[i] = a[i] * b[i] (dropout's mask).
void multiply(const float* a, const float* b, float* out, std::int64_t n);

// out[r + rows * f] = bias[f] (the start of a dense product).
void broadcast_bias(const float* bias, std::int64_t rows, std::int64_t features, float* out);
// sums[j] = sum of column j of a rows x cols matrix (leading dimension ld),
// each added in order.
void column_sums(const float* matrix, std::int64_t rows, std::int64_t cols, std::int64_t ld,
                 float* sums);

// A windowed layer's geometry (engine/local_geometry.hpp, which fills it):
// output position p = r * out_cols + c in the kernel's order; tap (i, j)
// of p reads input row r * stride_rows - pad_rows + i * dilation_rows and
// column c * stride_cols - pad_cols + j * dilation_cols; the strides are the
// engine's TensorStrides, in units of the batch size. Locally connected
// layers and pooling have dilation 1 and one group.
struct LocalShape {
  std::int64_t in_rows, in_cols, channels, kernel_rows, kernel_cols, stride_rows, stride_cols,
      pad_rows, pad_cols, out_rows, out_cols, filters;
  std::int64_t in_row, in_col, in_channel, out_position, out_filter;
  std::int64_t dilation_rows = 1, dilation_cols = 1, groups = 1;

  LCNN_HOST_DEVICE std::int64_t positions() const { return out_rows * out_cols; }
  LCNN_HOST_DEVICE std::int64_t patch() const { return kernel_rows * kernel_cols * channels; }
  LCNN_HOST_DEVICE std::int64_t inputs() const { return in_rows * in_cols * channels; }
};

// The patches of positions [first, first + count): patches[(q * KC + l) * B
// + b] is tap l of position first + q for sample b, zero outside the input.
void local_patches(const LocalShape& shape, std::int64_t batch, std::int64_t first,
                   std::int64_t count, const float* input, float* patches);
// Output (b, p, f) = bias[p * F + f], or zero without a bias.
void local_bias(const LocalShape& shape, std::int64_t batch, const float* bias, float* output);
// One thread per output value: its patch times its filter, plus the bias.
// For shapes a batched GEMM serves badly (one channel and one filter).
void local_forward_direct(const LocalShape& shape, std::int64_t batch, const float* input,
                          const float* kernel, const float* bias, float* output);
// grad_kernel (p, f, l) = sum over the batch of patch value times output
// gradient, one thread per weight.
void local_kernel_gradient_direct(const LocalShape& shape, std::int64_t batch,
                                  const float* input, const float* grad_output,
                                  float* grad_kernel);
// grad_bias (p, f) = sum over the batch of the output gradient.
void local_bias_gradient(const LocalShape& shape, std::int64_t batch, const float* grad_output,
                         float* grad_bias);
// grad_input, one thread per input value, summed over the windows that
// read it in position order: from patch gradients laid out as
// local_patches() lays out patches when `patch_gradients` is not null, else
// straight from the output gradient and the kernel.
void local_input_gradient(const LocalShape& shape, std::int64_t batch,
                          const float* patch_gradients, const float* grad_output,
                          const float* kernel, float* grad_input);

// Max (else average) pooling with the windows of `shape` (filters ==
// channels; dilation 1), as engine/pooling.hpp: taps outside the input take
// no part. One thread per output value.
void pool_forward(const LocalShape& shape, bool max, std::int64_t batch, const float* input,
                  float* output);
// Its input gradient, one thread per channel and sample adding the terms of
// every window in the CPU engine's order: a maximum's gradient goes to its
// first tap in row-major window order, or with `split_ties` in equal shares
// to every tap holding it.
void pool_backward(const LocalShape& shape, bool max, bool split_ties, std::int64_t batch,
                   const float* input, const float* grad_output, float* grad_input);

// A convolution (Keras's Conv1D/2D, engine/convolution.hpp): the kernel in
// Keras's layout (kh, kw, C / groups, F), column-major; one thread per
// output value, per weight (summing over positions, then samples) and per
// input value, each adding its terms in a fixed order.
void conv_forward(const LocalShape& shape, std::int64_t batch, const float* input,
                  const float* kernel, const float* bias, float* output);
void conv_kernel_gradient(const LocalShape& shape, std::int64_t batch, const float* input,
                          const float* grad_output, float* grad_kernel);
// grad_bias[f] = the sum of filter f's output gradient over positions and samples.
void conv_bias_gradient(const LocalShape& shape, std::int64_t batch, const float* grad_output,
                        float* grad_bias);
void conv_input_gradient(const LocalShape& shape, std::int64_t batch, const float* grad_output,
                         const float* kernel, float* grad_input);

// A batch's values of one axis's channels (engine/batch_norm.hpp's
// ChannelExtent): value k of channel c, k = o * inner + i, lies at i + inner
// * (c + channels * o); each channel's values are summed in chunks of
// `chunk`, each chunk's runs of contiguous values in order.
struct ChannelRuns {
  std::int64_t inner, channels, outer, chunk;
  LCNN_HOST_DEVICE std::int64_t per_channel() const { return inner * outer; }
  LCNN_HOST_DEVICE std::int64_t chunks() const {
    const std::int64_t n = (per_channel() + chunk - 1) / chunk;
    return n > 1 ? n : 1;
  }
};
// partials[c * chunks + u], in double, the sum over chunk u of channel c of
// a (no b, no center), (a - center[c])^2 (no b), or, with b, each run's sum
// of a * (b - center[c]) times factor[c].
void channel_partial_sums(const ChannelRuns& runs, const float* a, const float* b,
                          const double* center, const double* factor, double* partials);
// y = x * multiplier[c] + shift[c].
void channel_affine(const ChannelRuns& runs, const float* x, const float* multiplier,
                    const float* shift, float* y);
// dx = scale[c] (g - centered[c] - slope[c] (x - mean[c])).
void channel_input_gradient(const ChannelRuns& runs, const float* x, const float* g,
                            const float* scale, const float* centered, const float* slope,
                            const float* mean, float* dx);

// partials[u] = the sum, in double and in order, of l1 |w| + l2 w^2 over
// the u-th chunk of `chunk` weights.
void penalty_partials(const float* w, std::int64_t n, double l1, double l2, std::int64_t chunk,
                      double* partials);
// g += the penalty's gradient (penalty_formula.hpp).
void add_penalty_gradient(const float* w, float* g, std::int64_t n, float l1, float two_l2);

// One optimizer step of n parameters, slots as update_parameter() reads them.
void optimizer_step(const UpdateRule<float>& rule, float* values, const float* gradient,
                    float* slots, std::int64_t n);

}  // namespace cuda
}  // namespace lcnn
