// Rng: reproducible streams and the moments of its draws.
#include <algorithm>
#include <cmath>
#include <cstdint>
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

// xoshiro256** as published (Blackman and Vigna), its state seeded by
// splitmix64: the first outputs of seed 42's streams 0, 1 and 2, computed
// with a separate implementation of both.
TEST(rng_streams_are_xoshiro256_seeded_by_consecutive_splitmix64_outputs) {
  const std::uint64_t expected[3][3] = {
      {0x15780b2e0c2ec716ULL, 0x6104d9866d113a7eULL, 0xae17533239e499a1ULL},
      {0xfe647e5153400883ULL, 0x7fcb8e42f6a75c30ULL, 0xb4d1e9a12a159020ULL},
      {0x74ea6fa5b404cb63ULL, 0xc30cf7fab43cbe38ULL, 0x3efbebb0f97dea62ULL}};
  for (std::uint64_t stream = 0; stream < 3; ++stream) {
    Rng rng(42, stream);
    for (int i = 0; i < 3; ++i) {
      const std::uint64_t x = rng.next();
      CHECK_MSG(x == expected[stream][i], "stream " << stream << " draw " << i << ": " << x);
    }
  }
  Rng seed_only(42);
  CHECK(seed_only.next() == expected[0][0]);
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

// draws() hands over the values next() would have returned, in order, and
// leaves the generator where those calls would have.
TEST(rng_draws_are_the_values_of_next) {
  Rng a(9), b(9);
  std::vector<std::uint64_t> drawn(37, 0);
  std::vector<index_t> order;
  a.draws(37, [&](index_t i, std::uint64_t value) {
    order.push_back(i);
    drawn[static_cast<std::size_t>(i)] = value;
  });
  for (index_t i = 0; i < 37; ++i) {
    CHECK_EQ(order[static_cast<std::size_t>(i)], i);
    CHECK_EQ(drawn[static_cast<std::size_t>(i)], b.next());
  }
  CHECK_EQ(a.next(), b.next());
}

// uniform_bound(p) is the least draw that uniform() puts at or above p: on
// either side of it lie draws on either side of p, at the ends of [0, 1],
// at values of p that are multiples of 2^-53, and at values that are not.
TEST(rng_uniform_bound_splits_draws_as_uniform_does) {
  const double step = std::ldexp(1.0, -53);
  for (double p : {0.0, step / 4, step, 1.5 * step, 0.1, 0.3, 0.5, 1 - step, 1.0}) {
    const std::uint64_t bound = Rng::uniform_bound(p);
    CHECK_MSG(static_cast<double>(bound) * step >= p, "p " << p);
    if (bound > 0) CHECK_MSG(static_cast<double>(bound - 1) * step < p, "p " << p);
  }
  CHECK_EQ(Rng::uniform_bound(0.0), std::uint64_t(0));
  CHECK_EQ(Rng::uniform_bound(step), std::uint64_t(1));
  CHECK_EQ(Rng::uniform_bound(1.5 * step), std::uint64_t(2));
  CHECK_EQ(Rng::uniform_bound(1.0), std::uint64_t(1) << 53);
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

  // rounded to float and stored as double, as R keeps float32 weights
  std::vector<double> as_float(1000);
  fill_random<double, float>(as_float.data(), 1000, Distribution::normal, 0.0, 1.0, 77);
  bool stored_rounded = true;
  for (int i = 0; i < 1000; ++i) {
    stored_rounded = stored_rounded && as_float[i] == static_cast<double>(f[i]);
  }
  CHECK(stored_rounded);

  CHECK(parse_distribution("truncated_normal") == Distribution::truncated_normal);
  CHECK_THROWS(parse_distribution("gamma"), std::invalid_argument);
}

// Chunk k of kRandomChunk values is stream k of the seed, whichever thread
// draws it: the same values on one thread or several, the last chunk
// partial. The expected values are drawn here from the streams one at a
// time, by the formulas of fill_random()'s comment.
TEST(fill_random_draws_chunk_k_from_stream_k_on_any_thread_count) {
  const index_t n = 2 * kRandomChunk + 1234;
  const std::uint64_t seed = 2026;
  for (Distribution d : {Distribution::uniform, Distribution::normal,
                         Distribution::truncated_normal}) {
    std::vector<double> expected(static_cast<std::size_t>(n));
    for (index_t first = 0; first < n; first += kRandomChunk) {
      Rng rng(seed, static_cast<std::uint64_t>(first / kRandomChunk));
      for (index_t i = first; i < std::min(n, first + kRandomChunk); ++i) {
        double z = d == Distribution::uniform ? rng.uniform() : rng.normal();
        while (d == Distribution::truncated_normal && std::abs(z) > 2.0) z = rng.normal();
        expected[static_cast<std::size_t>(i)] =
            d == Distribution::uniform ? -0.5 + 1.5 * z : -0.5 + 1.0 * z;
      }
    }
    for (int threads : {1, 2, 3}) {
      std::vector<double> v(static_cast<std::size_t>(n));
      fill_random(v.data(), n, d, -0.5, 1.0, seed, threads);
      CHECK_MSG(v == expected, "distribution " << static_cast<int>(d) << ", " << threads
                                               << " threads");
    }
  }
}

// A value below float's smallest normal number rounds to zero on every
// thread (the engine's float mode), not to a subnormal on some threads.
TEST(fill_random_rounds_subnormal_floats_to_zero_on_every_thread) {
  const index_t n = 3 * kRandomChunk;
  for (int threads : {1, 2}) {
    std::vector<double> v(static_cast<std::size_t>(n), 1.0);
    fill_random<double, float>(v.data(), n, Distribution::constant, 1e-40, 0.0, 1, threads);
    CHECK_MSG(std::all_of(v.begin(), v.end(), [](double x) { return x == 0.0; }),
              threads << " threads");
  }
}
