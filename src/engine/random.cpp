#include "random.hpp"

#include <cmath>
#include <stdexcept>

namespace lcnn {

namespace {

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

Rng::Rng(std::uint64_t seed) {
  for (auto& s : s_) s = splitmix64(seed);
}

std::uint64_t Rng::next() {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

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

template <typename T>
void fill_random(T* values, index_t n, Distribution d, double a, double b, std::uint64_t seed) {
  Rng rng(seed);
  for (index_t i = 0; i < n; ++i) {
    double v = a;
    switch (d) {
      case Distribution::constant:
        break;
      case Distribution::uniform:
        v = a + (b - a) * rng.uniform();
        break;
      case Distribution::normal:
        v = a + b * rng.normal();
        break;
      case Distribution::truncated_normal: {
        double z;
        do z = rng.normal(); while (std::abs(z) > 2.0);
        v = a + b * z;
        break;
      }
    }
    values[i] = static_cast<T>(v);
  }
}

template void fill_random<float>(float*, index_t, Distribution, double, double, std::uint64_t);
template void fill_random<double>(double*, index_t, Distribution, double, double, std::uint64_t);

}  // namespace lcnn
