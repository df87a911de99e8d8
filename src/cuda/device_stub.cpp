// cuda/device.hpp for a build without CUDA (configure found no usable nvcc,
// or LCNN_CUDA=0): no devices, and why; every device operation throws.
// R never reaches them (compile() refuses device = "cuda" first).
#include "device.hpp"

namespace lcnn {
namespace cuda {

namespace {

[[noreturn]] void not_built() { throw Error("lcnn was built without CUDA"); }

}  // namespace

DeviceReport query_devices() {
  return {false, Availability::not_built, "lcnn was built without CUDA", 0, 0, {}};
}

void* allocate(std::size_t) { not_built(); }
void release(void*) noexcept {}
void copy_to_device(void*, const void*, std::size_t) { not_built(); }
void copy_to_host(void*, const void*, std::size_t) { not_built(); }
void copy_on_device(void*, const void*, std::size_t) { not_built(); }
void fill_zero(void*, std::size_t) { not_built(); }
void synchronize() { not_built(); }
void open_blas() { not_built(); }
void gemm(bool, bool, std::int64_t, std::int64_t, std::int64_t, const float*, std::int64_t,
          const float*, std::int64_t, float, float*, std::int64_t) {
  not_built();
}
void gemm_batched(bool, bool, std::int64_t, std::int64_t, std::int64_t, const float* const*,
                  std::int64_t, const float* const*, std::int64_t, float, float* const*,
                  std::int64_t, std::int64_t) {
  not_built();
}
void gather_features(const std::int64_t*, std::int64_t, std::int64_t, const float*, float*) {
  not_built();
}
void scatter_features(const std::int64_t*, std::int64_t, std::int64_t, const float*, float*) {
  not_built();
}
void activate(Activation, float*, std::int64_t) { not_built(); }
void softmax(float*, std::int64_t, std::int64_t) { not_built(); }
void activation_gradient(Activation, const float*, const float*, const float*, float*,
                         std::int64_t) {
  not_built();
}
void softmax_gradient(const float*, const float*, float*, std::int64_t, std::int64_t) {
  not_built();
}
void multiply(const float*, const float*, float*, std::int64_t) { not_built(); }
void broadcast_bias(const float*, std::int64_t, std::int64_t, float*) { not_built(); }
void column_sums(const float*, std::int64_t, std::int64_t, std::int64_t, float*) { not_built(); }
void local_patches(const LocalShape&, std::int64_t, std::int64_t, std::int64_t, const float*,
                   float*) {
  not_built();
}
void local_bias(const LocalShape&, std::int64_t, const float*, float*) { not_built(); }
void local_forward_direct(const LocalShape&, std::int64_t, const float*, const float*, const float*,
                          float*) {
  not_built();
}
void local_kernel_gradient_direct(const LocalShape&, std::int64_t, const float*, const float*,
                                  float*) {
  not_built();
}
void local_bias_gradient(const LocalShape&, std::int64_t, const float*, float*) { not_built(); }
void local_input_gradient(const LocalShape&, std::int64_t, const float*, const float*, const float*,
                          float*) {
  not_built();
}
void pool_forward(const LocalShape&, bool, std::int64_t, const float*, float*) { not_built(); }
void pool_backward(const LocalShape&, bool, bool, std::int64_t, const float*, const float*,
                   float*) {
  not_built();
}
void conv_forward(const LocalShape&, std::int64_t, const float*, const float*, const float*,
                  float*) {
  not_built();
}
void conv_kernel_gradient(const LocalShape&, std::int64_t, const float*, const float*, float*) {
  not_built();
}
void conv_bias_gradient(const LocalShape&, std::int64_t, const float*, float*) { not_built(); }
void conv_input_gradient(const LocalShape&, std::int64_t, const float*, const float*, float*) {
  not_built();
}
void channel_partial_sums(const ChannelRuns&, const float*, const float*, const double*,
                          const double*, double*) {
  not_built();
}
void channel_affine(const ChannelRuns&, const float*, const float*, const float*, float*) {
  not_built();
}
void channel_input_gradient(const ChannelRuns&, const float*, const float*, const float*,
                            const float*, const float*, const float*, float*) {
  not_built();
}
void penalty_partials(const float*, std::int64_t, double, double, std::int64_t, double*) {
  not_built();
}
void add_penalty_gradient(const float*, float*, std::int64_t, float, float) { not_built(); }
void optimizer_step(const UpdateRule<float>&, float*, const float*, float*, std::int64_t) {
  not_built();
}

}  // namespace cuda
}  // namespace lcnn
