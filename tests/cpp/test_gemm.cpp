// gemm(): every kernel set this build and CPU can run against a naive
// product, for all transposes, leading dimensions larger than the rows,
// accumulation, and sizes on both sides of the kernels' blocking; the
// column products, optimizer updates and scans for missing values of every
// set likewise.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "buffer.hpp"
#include "check.hpp"
#include "gemm.hpp"
#include "kernel_sets.hpp"
#include "random.hpp"

using namespace lcnn;

namespace {

template <typename T>
std::vector<T> random_values(index_t n, Rng& rng) {
  std::vector<T> v(static_cast<std::size_t>(n));
  for (T& x : v) x = static_cast<T>(rng.uniform() * 2 - 1);
  return v;
}

// op(X)[i, j] of a column-major X with leading dimension ld.
template <typename T>
T element(const std::vector<T>& x, index_t ld, Op op, index_t i, index_t j) {
  return op == Op::transpose ? x[j + i * ld] : x[i + j * ld];
}

template <typename T>
void check_products(const std::string& kernels, double tolerance) {
  Rng rng(11);
  const index_t sizes[][3] = {{1, 1, 1}, {5, 3, 0}, {7, 1, 13}, {64, 27, 64}, {33, 70, 129}, {300, 9, 40}};
  for (const auto& size : sizes) {
    const index_t m = size[0], n = size[1], k = size[2];
    for (Op op_a : {Op::none, Op::transpose}) {
      for (Op op_b : {Op::none, Op::transpose}) {
        const index_t lda = (op_a == Op::none ? m : k) + 3, ldb = (op_b == Op::none ? k : n) + 1;
        const index_t ldc = m + 2;
        const std::vector<T> a = random_values<T>(lda * (op_a == Op::none ? k : m), rng);
        const std::vector<T> b = random_values<T>(ldb * (op_b == Op::none ? n : k), rng);
        const std::vector<T> c0 = random_values<T>(ldc * n, rng);
        for (bool accumulate : {false, true}) {
          std::vector<T> c = c0;
          gemm(op_a, op_b, m, n, k, a.data(), lda, b.data(), ldb, c.data(), ldc, accumulate);
          bool near = true, padding_kept = true;
          for (index_t j = 0; j < n; ++j) {
            for (index_t i = 0; i < ldc; ++i) {
              const T got = c[i + j * ldc];
              if (i >= m) {
                padding_kept = padding_kept && got == c0[i + j * ldc];
                continue;
              }
              double want = accumulate ? c0[i + j * ldc] : 0;
              for (index_t l = 0; l < k; ++l) {
                want += double(element(a, lda, op_a, i, l)) * element(b, ldb, op_b, l, j);
              }
              near = near && check::near(got, want, tolerance);
            }
          }
          CHECK_MSG(near, kernels << " " << m << "x" << n << "x" << k << " op_a "
                                  << int(op_a) << " op_b " << int(op_b) << " accumulate "
                                  << accumulate);
          CHECK_MSG(padding_kept, kernels << " wrote past the rows of C");
        }
      }
    }
  }
}

// column_product() against a naive sum, with `a` given by columns and by
// rows, zero (null) columns or rows, unwanted (null) result columns, both
// stride orders of s, an init row, accumulation, relu of the results, and
// sizes around the tiles, the copied blocks and the cache blocking; one to
// four rows (dot products in the sets where that is at most a quarter of
// a vector, `a` by columns and s_l = 1), with sums of whole vectors, of
// pairs of them and a part, and of more values than the row buffer on the
// stack holds; and a vector of rows or less against more columns than
// the wide tiles of such rows take, with the narrow tiles after them.
template <typename T>
void check_column_products(const std::string& kernels, double tolerance) {
  Rng rng(12);
  const index_t sizes[][3] = {{1, 1, 1},    {5, 3, 0},     {16, 4, 27},    {37, 7, 9},
                              {64, 64, 27}, {64, 5, 5000}, {1500, 6, 64}, {100, 10, 300},
                              {27, 64, 64}, {9, 2, 40},     {1, 7, 45},    {2, 9, 32},
                              {4, 3, 100},  {3, 5, 3000},  {1, 4, 2049}, {9, 21, 64},
                              {7, 40, 30},  {2, 25, 30},   {16, 33, 17}};
  for (const auto& size : sizes) {
    const index_t m = size[0], n = size[1], k = size[2];
    const index_t ld = std::max(m, k) + 3, ldc = m + 2;
    const std::vector<T> values = random_values<T>(ld * std::max(m, k), rng);
    const std::vector<T> init = random_values<T>(n, rng);
    const std::vector<T> c0 = random_values<T>(ldc * n, rng);
    for (PointerTo points_to : {PointerTo::columns, PointerTo::rows}) {
      // a(i, l): column l starts at values + l * ld, or row i at values + i * ld.
      const bool by_columns = points_to == PointerTo::columns;
      for (index_t run : {index_t(0), index_t(40), index_t(10)}) {
        // run 0: lines ld apart, some null; else columns m apart in runs of
        // `run` columns, with a gap after each: few runs per block (read in
        // place when m is whole vectors) or many (copied).
        if (run > 0 && !by_columns) continue;
        std::vector<T> packed;
        std::vector<const T*> a(static_cast<std::size_t>(by_columns ? k : m));
        if (run > 0) packed = random_values<T>(k * (m + 1), rng);
        for (std::size_t q = 0; q < a.size(); ++q) {
          const index_t l = static_cast<index_t>(q);
          a[q] = run > 0 ? packed.data() + l * m + l / run
                 : q % 7 == 3 ? nullptr : values.data() + l * ld;
        }
        auto element = [&](index_t i, index_t l) -> double {
          const T* line = by_columns ? a[l] : a[i];
          return line == nullptr ? 0.0 : double(line[by_columns ? i : l]);
        };
        for (bool l_fastest : {true, false}) {
          const index_t s_l = l_fastest ? 1 : n + 1, s_j = l_fastest ? k + 2 : 1;
          const std::vector<T> s = random_values<T>(std::max(s_l * k, s_j * n) + 2 * (k + n), rng);
          for (int variant = 0; variant < 6; ++variant) {
            const int base = variant % 3;  // zero, init, accumulate
            const bool rectify = variant >= 3;
            // Without the requests ahead for s, alternately: the same values.
            const Operand s_from = variant % 2 == 0 ? Operand::streamed : Operand::cached;
            std::vector<T> c = c0;
            std::vector<T*> columns(static_cast<std::size_t>(n));
            for (index_t j = 0; j < n; ++j) columns[j] = j == 2 ? nullptr : c.data() + j * ldc;
            column_product<T>(m, n, k, a.data(), points_to, s.data(), s_l, s_j, columns.data(),
                              base == 1 ? init.data() : nullptr, base == 2, rectify, s_from);
            bool near = true, others_kept = true;
            for (index_t j = 0; j < n; ++j) {
              for (index_t i = 0; i < ldc; ++i) {
                const T got = c[i + j * ldc];
                if (i >= m || columns[j] == nullptr) {
                  others_kept = others_kept && got == c0[i + j * ldc];
                  continue;
                }
                double want = base == 2 ? c0[i + j * ldc] : base == 1 ? init[j] : 0;
                for (index_t l = 0; l < k; ++l) want += element(i, l) * s[l * s_l + j * s_j];
                if (rectify && want < 0) want = 0;
                near = near && check::near(got, want, tolerance) && !(rectify && got < 0);
              }
            }
            CHECK_MSG(near, kernels << " column product " << m << "x" << n << "x" << k << " by "
                                    << (by_columns ? "columns" : "rows") << " runs " << run
                                    << " l_fastest " << l_fastest << " base " << base
                                    << " rectify " << rectify << " cached "
                                    << (s_from == Operand::cached));
            CHECK_MSG(others_kept, kernels << " column product wrote outside its columns");
          }
        }
      }
    }
  }
}

// update_parameters() against update_parameter(), the rule the device
// runs parameter by parameter, for every optimizer variant with its number
// of slots (the slots past them left as they were), on 1,299 parameters: a
// partial last vector in every set.
template <typename T>
void check_updates(const std::string& kernels, double tolerance) {
  Rng rng(13);
  const index_t n = 1299;
  std::vector<UpdateRule<T>> rules(11);
  for (UpdateRule<T>& rule : rules) {
    rule.learning_rate = T(0.05);
    rule.epsilon = T(1e-7);
    rule.alpha = T(0.03);
    rule.beta_1 = T(0.9);
    rule.beta_2 = T(0.999);
    rule.rho = T(0.8);
  }
  rules[1].momentum = T(0.9);
  rules[2].momentum = T(0.9);
  rules[2].nesterov = true;
  rules[3].kind = rules[4].kind = OptimizerKind::adam;
  rules[4].amsgrad = true;
  for (int r = 5; r < 9; ++r) rules[r].kind = OptimizerKind::rmsprop;
  rules[6].centered = rules[8].centered = true;
  rules[7].momentum = rules[8].momentum = T(0.5);
  rules[9].kind = rules[10].kind = OptimizerKind::adagrad;
  rules[10].epsilon = T(0.25);
  const int slot_counts[] = {0, 1, 1, 2, 3, 1, 2, 2, 3, 1, 1};
  for (std::size_t r = 0; r < rules.size(); ++r) {
    const UpdateRule<T>& rule = rules[r];
    const std::vector<T> values = random_values<T>(n, rng), gradient = random_values<T>(n, rng);
    // Three slots of n, none negative (Adam's and Adagrad's squares), the
    // centered RMSprop's mean gradient (slot 1) small against its velocity
    // (slot 0), as training keeps them.
    std::vector<T> slots = random_values<T>(3 * n, rng);
    for (index_t i = 0; i < 3 * n; ++i) {
      slots[i] *= slots[i] * (i / n == 1 ? T(0.5) : T(1));
      if (i / n == 0) slots[i] += T(0.5);
    }
    std::vector<T> want_values = values, want_slots = slots;
    std::vector<T> got_values = values, got_slots = slots;
    for (index_t i = 0; i < n; ++i) {
      update_parameter(rule, want_values.data(), gradient.data(), want_slots.data(), n, i);
    }
    update_parameters(rule, got_values.data(), gradient.data(), got_slots.data(),
                      slot_counts[r], n, n);
    bool near = true;
    for (index_t i = 0; i < n; ++i) {
      near = near && check::near(got_values[i], want_values[i], tolerance);
    }
    for (index_t i = 0; i < 3 * n; ++i) {
      near = near && check::near(got_slots[i], want_slots[i], tolerance);
    }
    CHECK_MSG(near, kernels << " optimizer update, rule " << r + 1);
  }
}

// R's NA for doubles: a NaN whose low word is 1954.
double r_na() {
  const std::uint64_t bits = 0x7FF00000000007A2ULL;
  double na;
  std::memcpy(&na, &bits, sizeof na);
  return na;
}

// any_not_finite() on counts around a vector, a step of four vectors and
// the scan's blocks of 65,536 values, from an aligned and an unaligned
// start, on 1-3 threads, with the bounds of double and of float: false for
// finite values within the bound, the bound itself, subnormals and
// negative zero; true for a NaN, R's NA, an infinity or a value past the
// bound anywhere, the first and last value and block edges among them.
void check_not_finite_scans(const std::string& kernels) {
  const double inf = std::numeric_limits<double>::infinity();
  for (const double bound : {std::numeric_limits<double>::max(),
                             double(std::numeric_limits<float>::max())}) {
    const double fill[] = {0.5, -0.0, bound, -bound, std::numeric_limits<double>::denorm_min(),
                           -1e30};
    std::vector<double> outside = {std::numeric_limits<double>::quiet_NaN(), r_na(), inf, -inf};
    if (bound < std::numeric_limits<double>::max()) {
      outside.push_back(1e39);
      outside.push_back(-1e300);
    }
    for (index_t count : {0L, 1L, 7L, 8L, 9L, 31L, 32L, 33L, 65535L, 65536L, 65537L, 196613L}) {
      for (index_t offset : {0L, 1L}) {
        std::vector<double> values(static_cast<std::size_t>(count + offset));
        for (std::size_t i = 0; i < values.size(); ++i) values[i] = fill[i % 6];
        const double* start = values.data() + offset;
        for (int threads = 1; threads <= 3; ++threads) {
          CHECK_MSG(!any_not_finite(start, count, bound, threads),
                    kernels << " bound " << bound << " count " << count << " offset " << offset
                            << " threads " << threads);
        }
        for (index_t at : {0L, 1L, 7L, 8L, 30L, 65535L, 65536L, count / 2, count - 1}) {
          if (at < 0 || at >= count) continue;
          for (double m : outside) {
            double& value = values[static_cast<std::size_t>(offset + at)];
            const double kept = value;
            value = m;
            for (int threads = 1; threads <= 3; ++threads) {
              CHECK_MSG(any_not_finite(start, count, bound, threads),
                        kernels << " bound " << bound << ": " << m << " at " << at << " of "
                                << count << " offset " << offset << " threads " << threads);
            }
            value = kept;
          }
        }
      }
    }
  }
}

// sample_major_rows() in every kernel set: squares of a vector's lanes
// where the rows start on a cache line and hold whole lines (48 and 64
// features, and 8 of double, with no shift), value by value where they do
// not (1 and 17 features, 8 of float, or rows one value past a line) and
// for the samples after the last whole square. Every value as
// static_cast<T> makes it, and nothing written around the rows. And
// whether the values copied hold one that is not finite in T (NaN,
// infinite, or beyond float's range for float): none; one at the first
// value, the last and one between; none for one in the samples just before
// and just after the copied ones.
template <typename T>
void check_sample_major_rows(const std::string& kernels) {
  const T untouched = T(-7);
  for (index_t features : {1L, 8L, 17L, 48L, 64L}) {
    for (index_t count : {0L, 1L, 15L, 16L, 17L, 40L}) {
      const index_t n = count + 5, first = 3;
      std::vector<double> data(static_cast<std::size_t>(n * features));
      for (std::size_t v = 0; v < data.size(); ++v) data[v] = 0.1 * double(v + 1) - 1.0 / 3.0;
      for (index_t shift : {0L, 1L}) {
        Buffer<T> rows(static_cast<std::size_t>(count * features + shift + 64), untouched);
        CHECK(!sample_major_rows(data.data() + first, n, count, rows.data() + shift, features));
        const index_t nan_at[][2] = {{0, 0},          {features - 1, count - 1},
                                     {features / 2, count / 2}, {0, -1},
                                     {features - 1, count}};
        std::vector<double> outside = {std::nan(""), -std::numeric_limits<double>::infinity()};
        if (std::is_same<T, float>::value) outside.push_back(1e39);
        for (const auto& feature_sample : nan_at) {
          if (count == 0) break;
          const index_t f = feature_sample[0], i = feature_sample[1];
          double& value = data[static_cast<std::size_t>(f * n + first + i)];
          const double kept = value;
          for (const double m : outside) {
            value = m;
            Buffer<T> scratch(rows.size());
            const bool found =
                sample_major_rows(data.data() + first, n, count, scratch.data() + shift, features);
            CHECK_MSG(found == (i >= 0 && i < count),
                      kernels << " features " << features << " count " << count << " shift "
                              << shift << ": " << m << " at feature " << f << ", sample " << i);
          }
          value = kept;
        }
        index_t wrong = 0;
        for (index_t v = 0; v < static_cast<index_t>(rows.size()); ++v) {
          const index_t at = v - shift, i = at / std::max<index_t>(features, 1);
          const bool inside = at >= 0 && at < count * features;
          const T want = inside ? static_cast<T>(data[(at % features) * n + first + i]) : untouched;
          wrong += rows[v] != want;
        }
        CHECK_MSG(wrong == 0, kernels << " features " << features << " count " << count
                                      << " shift " << shift << ": " << wrong << " wrong");
      }
    }
  }
}

}  // namespace

TEST(gemm_scans_of_every_kernel_set_find_every_value_not_finite) {
  for_each_kernel_set([](const std::string& kernels) { check_not_finite_scans(kernels); });
}

TEST(gemm_optimizer_updates_of_every_kernel_set_match_the_per_parameter_rule) {
  for_each_kernel_set([](const std::string& kernels) {
    check_updates<float>(kernels, 1e-6);
    check_updates<double>(kernels, 1e-14);
  });
}

TEST(gemm_column_products_of_every_kernel_set_match_naive_sums) {
  for_each_kernel_set([](const std::string& kernels) {
    check_column_products<float>(kernels, 1e-4);
    check_column_products<double>(kernels, 1e-12);
  });
}

TEST(gemm_every_kernel_set_matches_naive_products) {
  const std::vector<std::string> sets = available_cpu_kernels();
  CHECK(!sets.empty() && sets.front() == "baseline");
  CHECK_EQ(cpu_kernels(), sets.back());
  for_each_kernel_set([](const std::string& kernels) {
    check_products<float>(kernels, 1e-5);
    check_products<double>(kernels, 1e-12);
  });
  CHECK_EQ(cpu_kernels(), sets.back());
}

TEST(gemm_sample_major_rows_of_every_kernel_set_copy_each_value_once) {
  for_each_kernel_set([](const std::string& kernels) {
    check_sample_major_rows<float>(kernels);
    check_sample_major_rows<double>(kernels);
  });
}

TEST(gemm_unknown_kernel_set_is_refused) {
  CHECK_THROWS(use_cpu_kernels("sse9"), std::invalid_argument);
  CHECK_EQ(cpu_kernels(), available_cpu_kernels().back());
}
