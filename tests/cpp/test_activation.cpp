// relu's branch-free vector path against the one-value formulas
// (activation_formulas.hpp) that the device also uses, in float and
// double, for lengths that leave a scalar tail.
#include <cmath>
#include <limits>
#include <vector>

#include "activation.hpp"
#include "activation_formulas.hpp"
#include "check.hpp"

using namespace lcnn;

namespace {

template <typename T>
std::vector<T> mixed_signs(index_t n) {
  std::vector<T> v(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) v[i] = T((i * 7) % 11) - T(5.5);
  v[0] = T(0);
  if (n > 3) v[3] = -T(0);
  if (n > 5) v[5] = std::numeric_limits<T>::quiet_NaN();
  return v;
}

template <typename T>
void check_relu(index_t n) {
  const std::vector<T> z = mixed_signs<T>(n);
  std::vector<T> y = z;
  activate_elementwise(Activation::relu, y.data(), n);
  std::vector<T> gy(z.size()), gz(z.size());
  for (index_t i = 0; i < n; ++i) gy[i] = T(i + 1) / T(3);
  activation_gradient(Activation::relu, z.data(), y.data(), gy.data(), gz.data(), n);
  bool values_right = true, gradient_right = true;
  for (index_t i = 0; i < n; ++i) {
    const T want = activation_value(Activation::relu, z[i]);
    // Bit-for-bit: +0 (not -0) below zero, and 0 for NaN.
    values_right = values_right && y[i] == want && !std::signbit(y[i]);
    gradient_right =
        gradient_right && gz[i] == gy[i] * activation_derivative(Activation::relu, z[i], y[i]);
  }
  CHECK(values_right);
  CHECK(gradient_right);
}

}  // namespace

TEST(relu_vector_path_matches_the_formulas_in_float_and_double) {
  for (index_t n : {1, 3, 4, 9, 37}) {
    check_relu<float>(n);
    check_relu<double>(n);
  }
}
