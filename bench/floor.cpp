// Machine floor for the lcnn benchmarks (DESIGN.md section 3).
//
// Measures, with T threads:
//   (a) peak float32 GEMM throughput (GFLOP/s): every thread multiplies its own
//       independent pair of square float matrices with Eigen (single-threaded
//       Eigen, EIGEN_DONT_PARALLELIZE), so all threads are busy at once; several
//       sizes are tried and the best run over all of them is reported;
//   (b) streaming read bandwidth (GB/s): a parallel sum over a float array of
//       about 1 GiB (far beyond any cache), best of several runs.
//
// Build (bench/run.R does this into bench/out/):
//   g++ -std=c++17 -O3 -march=native -fopenmp -DEIGEN_DONT_PARALLELIZE \
//       -Wno-ignored-attributes -I"$(Rscript -e 'cat(system.file("include", package = "RcppEigen"))')" \
//       bench/floor.cpp -o bench/out/floor
// Usage: floor [threads] [array_MiB] [gemm]
//   a third argument "gemm" skips the bandwidth test (run.R uses it for a
//   second, portable build compiled like R's defaults, for comparison).
// Output: one "key value" pair per line.

#ifndef EIGEN_DONT_PARALLELIZE
#define EIGEN_DONT_PARALLELIZE
#endif
// Eigen 3.3 (RcppEigen) uses AVX-512 only when asked to, and then needs
// 64-byte alignment of its heap buffers (it segfaults on aligned loads without
// it). Ask for both when the target has AVX-512 so the floor is the best this
// machine allows; on other targets the widest ISA -march=native enables is used.
#if defined(__AVX512F__)
#ifndef EIGEN_ENABLE_AVX512
#define EIGEN_ENABLE_AVX512
#endif
#ifndef EIGEN_MAX_ALIGN_BYTES
#define EIGEN_MAX_ALIGN_BYTES 64
#endif
#endif
#include <Eigen/Dense>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using MatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic>;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Best GFLOP/s over `runs` runs of `reps` products of n x n by n x n per thread.
double gemm_gflops(int threads, int n, int reps, int runs) {
  std::vector<MatF> a(threads), b(threads), c(threads);
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();  // first touch on the owning thread
    a[t] = MatF::Random(n, n);
    b[t] = MatF::Random(n, n);
    c[t] = MatF::Zero(n, n);
    c[t].noalias() = a[t] * b[t];  // warm-up
  }
  double best = 0.0;
  for (int run = 0; run < runs; ++run) {
    Clock::time_point t0;
#pragma omp parallel num_threads(threads)
    {
      const int t = omp_get_thread_num();
#pragma omp barrier
#pragma omp single
      t0 = Clock::now();
      for (int r = 0; r < reps; ++r) c[t].noalias() = a[t] * b[t];
    }  // implicit barrier: every thread is done
    const double s = seconds_since(t0);
    const double flops = 2.0 * n * double(n) * n * reps * threads;
    best = std::max(best, flops / s / 1e9);
  }
  // Keep the results alive so the products cannot be optimised away.
  volatile float sink = 0.0f;
  for (int t = 0; t < threads; ++t) sink = sink + c[t](0, 0);
  (void)sink;
  return best;
}

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};

// Best GB/s over `runs` parallel sums of an array of `count` floats.
double read_bandwidth(int threads, std::size_t count, int runs, double* checksum) {
  std::unique_ptr<float, FreeDeleter> buf(
      static_cast<float*>(std::aligned_alloc(64, (count * sizeof(float) + 63) / 64 * 64)));
  if (!buf) {
    std::fprintf(stderr, "floor: cannot allocate %zu bytes\n", count * sizeof(float));
    std::exit(1);
  }
  float* x = buf.get();
  const long long n = static_cast<long long>(count);
#pragma omp parallel for num_threads(threads) schedule(static)
  for (long long i = 0; i < n; ++i) x[i] = static_cast<float>(i & 1023) * 1e-3f;

  double best = 0.0;
  double total = 0.0;
  for (int run = 0; run < runs; ++run) {
    const Clock::time_point t0 = Clock::now();
    float sum = 0.0f;
#pragma omp parallel for simd num_threads(threads) schedule(static) reduction(+ : sum)
    for (long long i = 0; i < n; ++i) sum += x[i];
    const double s = seconds_since(t0);
    total += sum;
    best = std::max(best, double(n) * sizeof(float) / s / 1e9);
  }
  *checksum = total;
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = argc > 1 ? std::atoi(argv[1]) : omp_get_max_threads();
  if (threads < 1) threads = 1;
  const double mib = argc > 2 ? std::atof(argv[2]) : 1024.0;
  const std::size_t count = static_cast<std::size_t>(mib * 1024 * 1024 / sizeof(float));
  const bool gemm_only = argc > 3 && std::strcmp(argv[3], "gemm") == 0;
  omp_set_dynamic(0);

  // GEMM: sizes large enough to reach Eigen's blocked kernel's steady state,
  // small enough (3 * 4 MiB at n = 1024) to keep the run short.
  struct Size { int n, reps; };
  const Size sizes[] = {{512, 16}, {768, 6}, {1024, 3}};
  double peak = 0.0;
  int best_n = 0;
  for (const Size& s : sizes) {
    const double g = gemm_gflops(threads, s.n, s.reps, 10);
    std::printf("gemm_gflops_n%d %.2f\n", s.n, g);
    if (g > peak) { peak = g; best_n = s.n; }
  }

  std::printf("threads %d\n", threads);
  std::printf("gemm_peak_gflops %.2f\n", peak);
  std::printf("gemm_best_n %d\n", best_n);
  double checksum = 0.0;
  if (!gemm_only) {
    const double bw = read_bandwidth(threads, count, 7, &checksum);
    std::printf("read_bandwidth_gbs %.2f\n", bw);
    std::printf("read_array_mib %.0f\n", mib);
  }
  std::printf("simd %s\n", Eigen::SimdInstructionSetsInUse());
  std::printf("checksum %.6g\n", checksum);
  return 0;
}
