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
  explicit Rng(std::uint64_t seed);
  std::uint64_t next();
  double uniform();  // [0, 1)
  double normal();   // standard normal

 private:
  std::uint64_t s_[4];
  bool has_spare_ = false;
  double spare_ = 0.0;
};

enum class Distribution { constant, uniform, normal, truncated_normal };

Distribution parse_distribution(const std::string& name);

// Fills n values: constant(a), uniform on [a, b), normal(mean a, sd b), or
// normal(mean a, sd b) redrawn until within two standard deviations (Keras's
// truncated normal).
template <typename T>
void fill_random(T* values, index_t n, Distribution d, double a, double b, std::uint64_t seed);

}  // namespace lcnn
