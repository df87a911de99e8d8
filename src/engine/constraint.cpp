#include "constraint.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace lcnn {

ConstraintKind parse_constraint(const std::string& name) {
  if (name == "none") return ConstraintKind::none;
  if (name == "maxnorm") return ConstraintKind::maxnorm;
  if (name == "nonneg") return ConstraintKind::nonneg;
  if (name == "unitnorm") return ConstraintKind::unitnorm;
  if (name == "minmaxnorm") return ConstraintKind::minmaxnorm;
  throw std::invalid_argument("unknown constraint '" + name + "'");
}

template <typename T>
void apply_constraint(const ConstraintSpec& c, std::vector<T>& w) {
  if (c.kind == ConstraintKind::none) return;
  if (c.kind == ConstraintKind::nonneg) {
    for (T& v : w) v = v < 0 ? T(0) : v;
    return;
  }
  if (c.group.size() != w.size()) throw std::invalid_argument("constraint groups do not fit");
  const index_t groups = *std::max_element(c.group.begin(), c.group.end());
  std::vector<double> squares(static_cast<std::size_t>(groups) + 1, 0.0);
  for (std::size_t i = 0; i < w.size(); ++i) squares[c.group[i]] += double(w[i]) * double(w[i]);
  // Keras's backend epsilon keeps zero-norm groups finite.
  const double eps = 1e-7;
  std::vector<double> scale(squares.size(), 1.0);
  for (std::size_t g = 1; g < squares.size(); ++g) {
    const double norm = std::sqrt(squares[g]);
    double desired = norm;
    switch (c.kind) {
      case ConstraintKind::maxnorm:
        desired = std::min(norm, c.max_value);
        break;
      case ConstraintKind::unitnorm:
        desired = 1.0;
        break;
      case ConstraintKind::minmaxnorm:
        desired = c.rate * std::min(std::max(norm, c.min_value), c.max_value) +
                  (1 - c.rate) * norm;
        break;
      default:
        break;
    }
    scale[g] = desired / (eps + norm);
  }
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (c.group[i] > 0) w[i] = T(w[i] * scale[c.group[i]]);
  }
}

template void apply_constraint<float>(const ConstraintSpec&, std::vector<float>&);
template void apply_constraint<double>(const ConstraintSpec&, std::vector<double>&);

}  // namespace lcnn
