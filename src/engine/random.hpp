// The engine's random numbers: xoshiro256** seeded through splitmix64, with
// its own uniform and normal draws, so a seed gives the same values on every
// platform and compiler (std:: distributions do not promise that).
#pragma once

#include <cstdint>
#include <string>

#include "tensor.hpp"

namespace lcnn {

class Rng {
 public:
  // Stream k of a seed starts from the splitmix64 outputs 4k + 1 to 4k + 4
  // of that seed: the streams of one seed never share a state word, and
  // stream 0 is the seed's only stream before streams existed.
  explicit Rng(std::uint64_t seed, std::uint64_t stream = 0);

  // next() and uniform() are defined here so that loops drawing one value
  // at a time inline them: out of line, a shared library calls them through
  // its procedure linkage table.
  std::uint64_t next() { return step(s_[0], s_[1], s_[2], s_[3]); }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double normal();                                                           // standard normal

  // The next n values of next(), handed to take(i, value) in order, with
  // the state in registers: a loop of next() calls that stores what it
  // draws keeps the state in memory, since such a store might change it
  // (a dropout mask of 8,192 values: 10.7 against 8.3 microseconds).
  template <typename Take>
  void draws(index_t n, Take take) {
    std::uint64_t s0 = s_[0], s1 = s_[1], s2 = s_[2], s3 = s_[3];
    for (index_t i = 0; i < n; ++i) take(i, step(s0, s1, s2, s3));
    s_[0] = s0;
    s_[1] = s1;
    s_[2] = s2;
    s_[3] = s3;
  }
  // The least d with d * 2^-53 >= p, for p in [0, 1]: uniform() >= p
  // exactly when (next() >> 11) >= uniform_bound(p), which tests a draw
  // without converting it to a double.
  static std::uint64_t uniform_bound(double p);

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  // xoshiro256**'s output from state (s0, s1, s2, s3), which it advances.
  static std::uint64_t step(std::uint64_t& s0, std::uint64_t& s1, std::uint64_t& s2,
                            std::uint64_t& s3) {
    const std::uint64_t result = rotl(s1 * 5, 7) * 9;
    const std::uint64_t t = s1 << 17;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 45);
    return result;
  }

  std::uint64_t s_[4];
  bool has_spare_ = false;
  double spare_ = 0.0;
};

enum class Distribution { constant, uniform, normal, truncated_normal };

Distribution parse_distribution(const std::string& name);

// fill_random() draws its values in chunks of this many, chunk k from
// stream k of the seed, so that the values do not depend on how many
// threads draw them; a tensor of at most one chunk is the seed's stream 0.
constexpr index_t kRandomChunk = 65536;

// Fills n values: constant(a), uniform on [a, b), normal(mean a, sd b), or
// normal(mean a, sd b) redrawn until within two standard deviations (Keras's
// truncated normal). Each value is drawn in double, rounded to Precision
// and stored as T (R keeps float32 weights as doubles rounded to float), in
// the engine's float mode (flush-to-zero) whichever thread draws it.
template <typename T, typename Precision = T>
void fill_random(T* values, index_t n, Distribution d, double a, double b, std::uint64_t seed,
                 int threads = 1);

}  // namespace lcnn
