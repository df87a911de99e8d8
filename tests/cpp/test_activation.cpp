// relu's branch-free vector path (keep_where_positive() of each CPU
// kernel set) against the one-value formulas (activation_formulas.hpp)
// that the device also uses, in float and double, for lengths around the
// kernels' vectors and steps of two, leaving tails of every size.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "activation.hpp"
#include "activation_formulas.hpp"
#include "check.hpp"
#include "kernel_sets.hpp"

using namespace lcnn;

namespace {

template <typename T>
std::vector<T> mixed_signs(index_t n) {
  std::vector<T> v(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) v[i] = T((i * 7) % 11) - T(5.5);
  if (n > 0) v[0] = T(0);
  if (n > 3) v[3] = -T(0);
  if (n > 5) v[5] = std::numeric_limits<T>::quiet_NaN();
  return v;
}

template <typename T>
void check_relu(const std::string& kernels, index_t n) {
  // Guard values past n: a tail store that reaches past it fails.
  constexpr index_t guard = 16;
  const T sentinel = T(-7.25);
  const std::vector<T> z = mixed_signs<T>(n);
  std::vector<T> y = z;
  y.resize(static_cast<std::size_t>(n + guard), sentinel);
  activate_elementwise(Activation::relu, y.data(), n);
  std::vector<T> gy(z.size()), gz(static_cast<std::size_t>(n + guard), sentinel);
  for (index_t i = 0; i < n; ++i) gy[i] = T(i + 1) / T(3);
  activation_gradient(Activation::relu, z.data(), y.data(), gy.data(), gz.data(), n);
  bool values_right = true, gradient_right = true, guards_kept = true;
  for (index_t i = 0; i < n; ++i) {
    const T want = activation_value(Activation::relu, z[i]);
    // Bit-for-bit: +0 (not -0) below zero, and 0 for NaN.
    values_right = values_right && y[i] == want && !std::signbit(y[i]);
    gradient_right =
        gradient_right && gz[i] == gy[i] * activation_derivative(Activation::relu, z[i], y[i]);
  }
  for (index_t i = n; i < n + guard; ++i) {
    guards_kept = guards_kept && y[i] == sentinel && gz[i] == sentinel;
  }
  CHECK_MSG(values_right, kernels << " n " << n);
  CHECK_MSG(gradient_right, kernels << " n " << n);
  CHECK_MSG(guards_kept, kernels << " n " << n);
}

}  // namespace

TEST(relu_vector_path_of_every_kernel_set_matches_the_formulas_in_float_and_double) {
  for_each_kernel_set([](const std::string& kernels) {
    for (index_t n : {0, 1, 3, 4, 9, 15, 16, 17, 31, 32, 33, 37, 100}) {
      check_relu<float>(kernels, n);
      check_relu<double>(kernels, n);
    }
  });
}
