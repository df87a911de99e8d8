#include "convert.hpp"

#include <cstdint>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace lcnn {

namespace {

void write_run(const float* from, double* to, index_t n, bool stream) {
#if defined(__SSE2__)
  if (stream) {
    index_t i = 0;
    for (; i < n && reinterpret_cast<std::uintptr_t>(to + i) % 16 != 0; ++i) to[i] = from[i];
    for (; i + 4 <= n; i += 4) {
      const __m128 four = _mm_loadu_ps(from + i);
      _mm_stream_pd(to + i, _mm_cvtps_pd(four));
      _mm_stream_pd(to + i + 2, _mm_cvtps_pd(_mm_movehl_ps(four, four)));
    }
    for (; i < n; ++i) to[i] = from[i];
    return;
  }
#endif
  convert_values(from, to, n);
}

void write_run(const double* from, double* to, index_t n, bool /* stream */) {
  convert_values(from, to, n);
}

template <typename T>
void write_runs(const T* from, index_t from_step, double* to, index_t to_step, index_t count,
                index_t runs, bool stream) {
  for (index_t r = 0; r < runs; ++r) {
    write_run(from + r * from_step, to + r * to_step, count, stream);
  }
}

}  // namespace

void write_result(const float* from, index_t from_step, double* to, index_t to_step,
                  index_t count, index_t runs, bool stream) {
  write_runs(from, from_step, to, to_step, count, runs, stream);
}

void write_result(const double* from, index_t from_step, double* to, index_t to_step,
                  index_t count, index_t runs, bool stream) {
  write_runs(from, from_step, to, to_step, count, runs, stream);
}

void finish_streaming(bool stream) {
#if defined(__SSE2__)
  if (stream) _mm_sfence();
#else
  (void)stream;
#endif
}

}  // namespace lcnn
