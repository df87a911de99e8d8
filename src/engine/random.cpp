#include "random.hpp"

#include <cmath>
#include <stdexcept>

#include "parallel.hpp"

namespace lcnn {

namespace {

constexpr std::uint64_t kSplitmixIncrement = 0x9E3779B97F4A7C15ULL;

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += kSplitmixIncrement);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace

Rng::Rng(std::uint64_t seed, std::uint64_t stream) {
  // splitmix64() adds its increment before it mixes: skipping 4k outputs
  // is adding 4k increments.
  std::uint64_t state = seed + 4 * stream * kSplitmixIncrement;
  for (auto& s : s_) s = splitmix64(state);
}

std::uint64_t Rng::uniform_bound(double p) {
  // p * 2^53 is exact, and so is its ceiling, at most 2^53.
  return static_cast<std::uint64_t>(std::ceil(std::ldexp(p, 53)));
}

double Rng::normal() {
  // Marsaglia's polar method; keeps the second draw for the next call.
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u, v, s;
  do {
    u = 2.0 * uniform() - 1.0;
    v = 2.0 * uniform() - 1.0;
    s = u * u + v * v;
  } while (s >= 1.0 || s == 0.0);
  const double factor = std::sqrt(-2.0 * std::log(s) / s);
  spare_ = v * factor;
  has_spare_ = true;
  return u * factor;
}

Distribution parse_distribution(const std::string& name) {
  if (name == "constant") return Distribution::constant;
  if (name == "uniform") return Distribution::uniform;
  if (name == "normal") return Distribution::normal;
  if (name == "truncated_normal") return Distribution::truncated_normal;
  throw std::invalid_argument("unknown distribution '" + name + "'");
}

namespace {

// fill_random() with one value drawn by draw(rng): a loop per distribution,
// so that the uniform draws inline.
template <typename T, typename Precision, typename Draw>
void fill_chunks(T* values, index_t n, std::uint64_t seed, int threads, Draw draw) {
  for_each_block(n, kRandomChunk, threads, [&](index_t first, index_t count) {
    const FlushDenormals flush;
    Rng rng(seed, static_cast<std::uint64_t>(first / kRandomChunk));
    for (index_t i = first; i < first + count; ++i) {
      values[i] = static_cast<T>(static_cast<Precision>(draw(rng)));
    }
  });
}

}  // namespace

template <typename T, typename Precision>
void fill_random(T* values, index_t n, Distribution d, double a, double b, std::uint64_t seed,
                 int threads) {
  switch (d) {
    case Distribution::constant:
      return fill_chunks<T, Precision>(values, n, seed, threads, [&](Rng&) { return a; });
    case Distribution::uniform:
      return fill_chunks<T, Precision>(values, n, seed, threads,
                                       [&](Rng& rng) { return a + (b - a) * rng.uniform(); });
    case Distribution::normal:
      return fill_chunks<T, Precision>(values, n, seed, threads,
                                       [&](Rng& rng) { return a + b * rng.normal(); });
    case Distribution::truncated_normal:
      return fill_chunks<T, Precision>(values, n, seed, threads, [&](Rng& rng) {
        double z;
        do z = rng.normal(); while (std::abs(z) > 2.0);
        return a + b * z;
      });
  }
}

template void fill_random<float>(float*, index_t, Distribution, double, double, std::uint64_t,
                                 int);
template void fill_random<double>(double*, index_t, Distribution, double, double, std::uint64_t,
                                  int);
template void fill_random<double, float>(double*, index_t, Distribution, double, double,
                                         std::uint64_t, int);

}  // namespace lcnn
