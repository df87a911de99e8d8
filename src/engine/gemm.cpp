#include "gemm.hpp"

#include <atomic>
#include <stdexcept>
#include <type_traits>

#include "gemm_kernels.hpp"
#include "parallel.hpp"

namespace lcnn {
namespace {

// Whether this CPU (and the operating system, which must save the wider
// registers) can run a kernel set; GCC's and Clang's CPU checks look at both.
bool cpu_runs(const std::string& name) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  if (name == "avx2") {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }
  if (name == "avx512") {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }
#endif
  return name == "baseline";
}

std::vector<GemmKernels> usable_tables() {
  std::vector<GemmKernels> built = {kernels_baseline::table()};
#ifdef LCNN_HAVE_AVX2
  built.push_back(kernels_avx2::table());
#endif
#ifdef LCNN_HAVE_AVX512
  built.push_back(kernels_avx512::table());
#endif
  std::vector<GemmKernels> usable;
  for (const GemmKernels& table : built) {
    if (cpu_runs(table.name)) usable.push_back(table);
  }
  return usable;
}

const std::vector<GemmKernels>& usable() {
  static const std::vector<GemmKernels> tables = usable_tables();
  return tables;
}

std::atomic<const GemmKernels*>& selected() {
  static std::atomic<const GemmKernels*> table{&usable().back()};
  return table;
}

// The kernel set in use.
const GemmKernels& kernels() { return *selected().load(std::memory_order_relaxed); }

// The one of a set's float and double kernels that takes T.
template <typename T, typename Single, typename Double>
auto for_precision(Single single, Double double_precision) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "float or double");
  if constexpr (std::is_same_v<T, float>) {
    return single;
  } else {
    return double_precision;
  }
}

}  // namespace

template <typename T>
void gemm(Op op_a, Op op_b, index_t m, index_t n, index_t k, const T* a, index_t lda,
          const T* b, index_t ldb, T* c, index_t ldc, bool accumulate) {
  if (m == 0 || n == 0) return;
  const GemmKernels& set = kernels();
  for_precision<T>(set.single, set.double_precision)(op_a, op_b, m, n, k, a, lda, b, ldb, c,
                                                       ldc, accumulate);
}

template void gemm<float>(Op, Op, index_t, index_t, index_t, const float*, index_t,
                          const float*, index_t, float*, index_t, bool);
template void gemm<double>(Op, Op, index_t, index_t, index_t, const double*, index_t,
                           const double*, index_t, double*, index_t, bool);

template <typename T>
void column_product(index_t m, index_t n, index_t k, const T* const* a, PointerTo a_points_to,
                    const T* s, index_t s_l, index_t s_j, T* const* c, const T* init,
                    bool accumulate, bool rectify, Operand s_from) {
  if (m == 0 || n == 0) return;
  const GemmKernels& set = kernels();
  for_precision<T>(set.columns_single, set.columns_double)(m, n, k, a, a_points_to, s, s_l, s_j,
                                                           c, init, accumulate, rectify, s_from);
}

template void column_product<float>(index_t, index_t, index_t, const float* const*, PointerTo,
                                    const float*, index_t, index_t, float* const*, const float*,
                                    bool, bool, Operand);
template void column_product<double>(index_t, index_t, index_t, const double* const*, PointerTo,
                                     const double*, index_t, index_t, double* const*,
                                     const double*, bool, bool, Operand);

template <typename T>
void update_parameters(const UpdateRule<T>& rule, T* values, const T* gradient, T* slots,
                       int slot_count, index_t slot_stride, index_t count) {
  if (count == 0) return;
  if (slot_count < 0 || slot_count > 3) {
    throw std::invalid_argument("an optimizer keeps at most 3 slots per parameter");
  }
  const GemmKernels& set = kernels();
  for_precision<T>(set.update_single, set.update_double)(rule, values, gradient, slots,
                                                         slot_count, slot_stride, count);
}

template void update_parameters<float>(const UpdateRule<float>&, float*, const float*, float*,
                                       int, index_t, index_t);
template void update_parameters<double>(const UpdateRule<double>&, double*, const double*,
                                        double*, int, index_t, index_t);

template <typename T, typename X>
double elementwise_loss(const LossSpec& loss, bool logits, const T* input, index_t batch,
                        index_t size, const X* target, const T* weights, index_t first,
                        index_t count, T* grad) {
  if (!is_elementwise(loss.kind)) {
    throw std::invalid_argument("elementwise_loss: a categorical loss takes whole rows");
  }
  // Float inputs take float or double targets; double inputs double ones.
  const GemmKernels& set = kernels();
  const auto kernel = for_precision<T>(
      for_precision<X>(set.loss_single, set.loss_single_from_double), set.loss_double);
  return kernel(loss, logits, input, batch, size, target, weights, first, count, grad);
}

template double elementwise_loss<float, float>(const LossSpec&, bool, const float*, index_t,
                                               index_t, const float*, const float*, index_t,
                                               index_t, float*);
template double elementwise_loss<float, double>(const LossSpec&, bool, const float*, index_t,
                                                index_t, const double*, const float*, index_t,
                                                index_t, float*);
template double elementwise_loss<double, double>(const LossSpec&, bool, const double*, index_t,
                                                 index_t, const double*, const double*,
                                                 index_t, index_t, double*);

template <typename T>
void keep_where_positive(const T* test, const T* value, T* out, index_t count) {
  if (count == 0) return;
  const GemmKernels& set = kernels();
  for_precision<T>(set.positive_single, set.positive_double)(test, value, out, count);
}

template void keep_where_positive<float>(const float*, const float*, float*, index_t);
template void keep_where_positive<double>(const double*, const double*, double*, index_t);

template <typename T>
bool sample_major_rows(const double* from, index_t n, index_t count, T* rows, index_t features) {
  if (count == 0 || features == 0) return false;
  const GemmKernels& set = kernels();
  return for_precision<T>(set.sample_major_single, set.sample_major_double)(from, n, count,
                                                                            rows, features);
}

template bool sample_major_rows<float>(const double*, index_t, index_t, float*, index_t);
template bool sample_major_rows<double>(const double*, index_t, index_t, double*, index_t);

bool any_not_finite(const double* values, index_t count, double bound, int threads) {
  constexpr index_t kBlock = index_t(1) << 16;
  const NotFiniteKernel scan = kernels().not_finite;
  std::atomic<bool> found{false};
  for_each_block(count, kBlock, threads, [&](index_t first, index_t n) {
    if (!found.load(std::memory_order_relaxed) && scan(values + first, n, bound)) {
      found.store(true, std::memory_order_relaxed);
    }
  });
  return found.load();
}

std::vector<std::string> available_cpu_kernels() {
  std::vector<std::string> names;
  for (const GemmKernels& table : usable()) names.emplace_back(table.name);
  return names;
}

std::string cpu_kernels() { return selected().load()->name; }

void use_cpu_kernels(const std::string& name) {
  for (const GemmKernels& table : usable()) {
    if (name == table.name) {
      selected().store(&table);
      return;
    }
  }
  std::string known;
  for (const std::string& available : available_cpu_kernels()) {
    known += (known.empty() ? "" : ", ") + available;
  }
  throw std::invalid_argument("CPU kernels \"" + name + "\" are not available here; available: " +
                              known);
}

}  // namespace lcnn
