// Rng: reproducible streams and the moments of its draws.
#include <cmath>
#include <stdexcept>
#include <vector>

#include "check.hpp"
#include "random.hpp"

using namespace lcnn;

TEST(rng_same_seed_same_stream) {
  Rng a(42), b(42), c(43);
  bool same = true, differs = false;
  for (int i = 0; i < 1000; ++i) {
    const auto x = a.next(), y = b.next(), z = c.next();
    same = same && x == y;
    differs = differs || x != z;
  }
  CHECK(same);
  CHECK(differs);
  Rng d(7), e(7);
  bool same_normal = true;
  for (int i = 0; i < 1001; ++i) same_normal = same_normal && d.normal() == e.normal();
  CHECK(same_normal);
  Rng zero(0);
  bool nonzero = false;
  for (int i = 0; i < 10; ++i) nonzero = nonzero || zero.next() != 0;
  CHECK(nonzero);
}

TEST(rng_uniform) {
  Rng rng(1);
  const int n = 100000;
  double lo = 1, hi = 0, sum = 0, sum2 = 0;
  for (int i = 0; i < n; ++i) {
    const double u = rng.uniform();
    lo = std::min(lo, u);
    hi = std::max(hi, u);
    sum += u;
    sum2 += u * u;
  }
  CHECK(lo >= 0.0);
  CHECK(hi < 1.0);
  const double mean = sum / n, var = sum2 / n - mean * mean;
  CHECK_MSG(std::abs(mean - 0.5) < 0.005, "mean " << mean);        // sd 0.0009
  CHECK_MSG(std::abs(var - 1.0 / 12) < 0.003, "variance " << var);  // sd 0.0003
}

TEST(rng_normal) {
  Rng rng(2);
  const int n = 100000;
  double sum = 0, sum2 = 0;
  int beyond2 = 0;
  for (int i = 0; i < n; ++i) {
    const double z = rng.normal();
    sum += z;
    sum2 += z * z;
    beyond2 += std::abs(z) > 2;
  }
  const double mean = sum / n, var = sum2 / n - mean * mean;
  CHECK_MSG(std::abs(mean) < 0.02, "mean " << mean);        // sd 0.003
  CHECK_MSG(std::abs(var - 1) < 0.03, "variance " << var);  // sd 0.0045
  CHECK_MSG(std::abs(beyond2 / double(n) - 0.0455) < 0.005, "P(|z| > 2) " << beyond2 / double(n));
}

TEST(fill_random_distributions) {
  const index_t n = 100000;
  std::vector<double> v(n);
  fill_random(v.data(), n, Distribution::truncated_normal, 1.5, 0.5, 3);
  double lo = 1e9, hi = -1e9, sum = 0;
  for (double x : v) {
    lo = std::min(lo, x);
    hi = std::max(hi, x);
    sum += x;
  }
  CHECK_MSG(lo >= 1.5 - 2 * 0.5 && hi <= 1.5 + 2 * 0.5, "range " << lo << " " << hi);
  CHECK_MSG(std::abs(sum / n - 1.5) < 0.01, "mean " << sum / n);
  CHECK_MSG(hi - lo > 1.9, "spread " << hi - lo);  // reaches near both bounds

  fill_random(v.data(), n, Distribution::uniform, -2.0, 3.0, 4);
  lo = 1e9, hi = -1e9, sum = 0;
  for (double x : v) {
    lo = std::min(lo, x);
    hi = std::max(hi, x);
    sum += x;
  }
  CHECK(lo >= -2.0 && hi < 3.0);
  CHECK_MSG(std::abs(sum / n - 0.5) < 0.03, "mean " << sum / n);

  fill_random(v.data(), n, Distribution::normal, -1.0, 2.0, 5);
  double s1 = 0, s2 = 0;
  for (double x : v) {
    s1 += x;
    s2 += x * x;
  }
  const double mean = s1 / n, var = s2 / n - mean * mean;
  CHECK_MSG(std::abs(mean + 1) < 0.04, "mean " << mean);
  CHECK_MSG(std::abs(var - 4) < 0.12, "variance " << var);

  fill_random(v.data(), 10, Distribution::constant, 0.25, 0.0, 6);
  bool constant = true;
  for (int i = 0; i < 10; ++i) constant = constant && v[i] == 0.25;
  CHECK(constant);

  // same seed, same values; float values are the rounded double ones
  std::vector<double> a(1000), b(1000);
  std::vector<float> f(1000);
  fill_random(a.data(), 1000, Distribution::normal, 0.0, 1.0, 77);
  fill_random(b.data(), 1000, Distribution::normal, 0.0, 1.0, 77);
  fill_random(f.data(), 1000, Distribution::normal, 0.0, 1.0, 77);
  CHECK(a == b);
  bool rounded = true;
  for (int i = 0; i < 1000; ++i) rounded = rounded && f[i] == static_cast<float>(a[i]);
  CHECK(rounded);
  fill_random(b.data(), 1000, Distribution::normal, 0.0, 1.0, 78);
  CHECK(a != b);

  CHECK(parse_distribution("truncated_normal") == Distribution::truncated_normal);
  CHECK_THROWS(parse_distribution("gamma"), std::invalid_argument);
}
