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
  std::uint64_t next() {
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
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double normal();                                                           // standard normal

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

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
