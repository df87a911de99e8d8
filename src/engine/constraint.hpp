// Weight constraints with Keras 2's definitions, applied to a parameter
// block after each optimizer update. Norm-based constraints act on groups
// of weights (those sharing every index of the Keras-layout array but the
// constraint's axes); the caller gives each weight its group number, 0 for
// weights that do not exist in Keras's layout (unconnected taps).
#pragma once

#include <string>
#include <vector>

#include "tensor.hpp"

namespace lcnn {

enum class ConstraintKind { none, maxnorm, nonneg, unitnorm, minmaxnorm };

struct ConstraintSpec {
  ConstraintKind kind = ConstraintKind::none;
  double min_value = 0, max_value = 0, rate = 1;
  std::vector<index_t> group;  // one per weight, from 1; 0 = not constrained
};

ConstraintKind parse_constraint(const std::string& name);

template <typename T>
void apply_constraint(const ConstraintSpec& c, std::vector<T>& weights);

}  // namespace lcnn
