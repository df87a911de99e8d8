// Device memory, copies and matrix products of cuda/device.hpp. cuBLAS is
// opened with dlopen() on the first product rather than linked, so that the
// package loads where no cuBLAS (or GPU, or driver) is installed. With
// LCNN_CUDA_EMULATE, host memory and naive loops stand in for both.
#include <cstdlib>
#include <cstring>
#include <string>

#include "device.hpp"
#include "launch.hpp"

#ifndef LCNN_CUDA_EMULATE
#include <cublas_v2.h>
#include <dlfcn.h>
#endif

namespace lcnn {
namespace cuda {

#ifdef LCNN_CUDA_EMULATE

void* allocate(std::size_t bytes) {
  void* memory = std::malloc(bytes);
  if (memory == nullptr) throw Error("allocate: out of memory");
  return memory;
}
void release(void* memory) noexcept { std::free(memory); }
void copy_to_device(void* device, const void* host, std::size_t bytes) {
  if (bytes > 0) std::memcpy(device, host, bytes);
}
void copy_to_host(void* host, const void* device, std::size_t bytes) {
  if (bytes > 0) std::memcpy(host, device, bytes);
}
void copy_on_device(void* to, const void* from, std::size_t bytes) {
  if (bytes > 0) std::memmove(to, from, bytes);
}
void fill_zero(void* device, std::size_t bytes) {
  if (bytes > 0) std::memset(device, 0, bytes);
}
void synchronize() {}

namespace {

// Element (i, j) of op(X) for a column-major X with leading dimension ld.
float element(const float* x, std::int64_t ld, bool transpose, std::int64_t i, std::int64_t j) {
  return transpose ? x[j + i * ld] : x[i + j * ld];
}

}  // namespace

void gemm(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k,
          const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
          std::int64_t ldc) {
  for (std::int64_t j = 0; j < n; ++j) {
    for (std::int64_t i = 0; i < m; ++i) {
      float sum = 0;
      for (std::int64_t l = 0; l < k; ++l) {
        sum += element(a, lda, transpose_a, i, l) * element(b, ldb, transpose_b, l, j);
      }
      c[i + j * ldc] = sum + (beta == 0 ? 0.0f : beta * c[i + j * ldc]);
    }
  }
}

void open_blas() {}

void gemm_batched(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n,
                  std::int64_t k, const float* const* a, std::int64_t lda, const float* const* b,
                  std::int64_t ldb, float beta, float* const* c, std::int64_t ldc,
                  std::int64_t count) {
  for (std::int64_t q = 0; q < count; ++q) {
    gemm(transpose_a, transpose_b, m, n, k, a[q], lda, b[q], ldb, beta, c[q], ldc);
  }
}

#else

namespace {

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    cudaGetLastError();  // clears a non-sticky error so that later calls start clean
    throw Error(std::string(what) + ": " + cudaGetErrorString(status));
  }
}

// cuBLAS's entry points, from the first of its sonames that opens.
struct Cublas {
  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasSetStream_v2) set_stream = nullptr;
  decltype(&cublasSgemm_v2) sgemm = nullptr;
  decltype(&cublasSgemmBatched) sgemm_batched = nullptr;
  decltype(&cublasGetStatusString) status_string = nullptr;
  cublasHandle_t handle = nullptr;
};

template <typename Function>
void resolve(void* library, const char* name, Function& function) {
  function = reinterpret_cast<Function>(dlsym(library, name));
  if (function == nullptr) throw Error(std::string("cuBLAS has no ") + name);
}

Cublas open_cublas() {
  void* library = nullptr;
  for (const char* soname : {"libcublas.so.13", "libcublas.so.12", "libcublas.so"}) {
    library = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (library != nullptr) break;
  }
  if (library == nullptr) {
    throw Error(
        "cuBLAS (libcublas.so.13 or .12) could not be opened; it comes with the CUDA "
        "toolkit, and its folder must be on LD_LIBRARY_PATH");
  }
  Cublas cublas;
  resolve(library, "cublasCreate_v2", cublas.create);
  resolve(library, "cublasSetStream_v2", cublas.set_stream);
  resolve(library, "cublasSgemm_v2", cublas.sgemm);
  resolve(library, "cublasSgemmBatched", cublas.sgemm_batched);
  resolve(library, "cublasGetStatusString", cublas.status_string);
  if (cublas.create(&cublas.handle) != CUBLAS_STATUS_SUCCESS) {
    throw Error("cublasCreate failed (is a GPU available?)");
  }
  cublas.set_stream(cublas.handle, stream());
  return cublas;
}

// Opened once (a failed open is retried by the next product).
Cublas& cublas() {
  static Cublas instance;
  if (instance.handle == nullptr) instance = open_cublas();
  return instance;
}

void check(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw Error(std::string(what) + ": " + cublas().status_string(status));
  }
}

int blas_int(std::int64_t value) {
  if (value > 2147483647) throw Error("a matrix dimension exceeds cuBLAS's 32-bit sizes");
  return static_cast<int>(value);
}

cublasOperation_t operation(bool transpose) { return transpose ? CUBLAS_OP_T : CUBLAS_OP_N; }

}  // namespace

cudaStream_t stream() {
  static cudaStream_t created = [] {
    cudaStream_t s = nullptr;
    check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
    return s;
  }();
  return created;
}

void check_launch(const char* what) { check(cudaGetLastError(), what); }

void* allocate(std::size_t bytes) {
  void* memory = nullptr;
  check(cudaMalloc(&memory, bytes), "cudaMalloc");
  return memory;
}

void release(void* memory) noexcept {
  if (memory != nullptr) cudaFree(memory);
}

void copy_to_device(void* device, const void* host, std::size_t bytes) {
  if (bytes == 0) return;
  check(cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, stream()), "cudaMemcpy");
  // The host memory may be reused as soon as this returns.
  check(cudaStreamSynchronize(stream()), "cudaMemcpy");
}

void copy_to_host(void* host, const void* device, std::size_t bytes) {
  if (bytes == 0) return;
  check(cudaMemcpyAsync(host, device, bytes, cudaMemcpyDeviceToHost, stream()), "cudaMemcpy");
  check(cudaStreamSynchronize(stream()), "cudaMemcpy");
}

void copy_on_device(void* to, const void* from, std::size_t bytes) {
  if (bytes == 0) return;
  check(cudaMemcpyAsync(to, from, bytes, cudaMemcpyDeviceToDevice, stream()), "cudaMemcpy");
}

void fill_zero(void* device, std::size_t bytes) {
  if (bytes == 0) return;
  check(cudaMemsetAsync(device, 0, bytes, stream()), "cudaMemset");
}

void synchronize() { check(cudaStreamSynchronize(stream()), "cudaStreamSynchronize"); }

void open_blas() { cublas(); }

void gemm(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k,
          const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
          std::int64_t ldc) {
  const float one = 1;
  check(cublas().sgemm(cublas().handle, operation(transpose_a), operation(transpose_b), blas_int(m),
                       blas_int(n), blas_int(k), &one, a, blas_int(lda), b, blas_int(ldb), &beta, c,
                       blas_int(ldc)),
        "cublasSgemm");
}

void gemm_batched(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n,
                  std::int64_t k, const float* const* a, std::int64_t lda, const float* const* b,
                  std::int64_t ldb, float beta, float* const* c, std::int64_t ldc,
                  std::int64_t count) {
  const float one = 1;
  check(cublas().sgemm_batched(cublas().handle, operation(transpose_a), operation(transpose_b),
                               blas_int(m), blas_int(n), blas_int(k), &one, a, blas_int(lda), b,
                               blas_int(ldb), &beta, c, blas_int(ldc), blas_int(count)),
        "cublasSgemmBatched");
}

#endif

}  // namespace cuda
}  // namespace lcnn
