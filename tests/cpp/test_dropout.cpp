// dropout_mask() (dropout.hpp): which values a training batch keeps, drawn
// in the same order with and without axes that share a draw.
#include <cstdint>
#include <vector>

#include "check.hpp"
#include "dropout.hpp"

using namespace lcnn;

namespace {

Shape shape_of(std::vector<index_t> dims) {
  Shape s;
  s.dims = std::move(dims);
  return s;
}

}  // namespace

// A mask with no shared axis, and one whose only shared axis has extent 1,
// take their draws in the order of the mask's values; a shared axis of
// extent 3 repeats that same mask along it. Every value is 0 or
// 1 / (1 - rate), and a batch's mask depends only on its seed and salt:
// the values dropped here are those the first version of dropout_mask()
// dropped, so that set.seed() trains the same model as before.
TEST(dropout_mask_draws_one_value_per_cell_in_order) {
  const double rate = 0.4;
  const float scale = 1.0f / 0.6f;
  std::vector<float> plain, extent_one, spread, again, other_salt;
  dropout_mask(shape_of({5, 3, 4}), rate, {false, false, false}, 7, 12345, plain);
  dropout_mask(shape_of({5, 3, 4, 1}), rate, {false, false, false, true}, 7, 12345, extent_one);
  dropout_mask(shape_of({5, 3, 4, 3}), rate, {false, false, false, true}, 7, 12345, spread);
  dropout_mask(shape_of({5, 3, 4}), rate, {false, false, false}, 7, 12345, again);
  dropout_mask(shape_of({5, 3, 4}), rate, {false, false, false}, 8, 12345, other_salt);
  CHECK_EQ(plain.size(), std::size_t(60));
  CHECK(extent_one == plain);
  CHECK(again == plain);
  CHECK(other_salt != plain);
  CHECK_EQ(spread.size(), std::size_t(180));
  for (std::size_t c = 0; c < 3; ++c) {
    for (std::size_t k = 0; k < plain.size(); ++k) {
      CHECK_MSG(spread[k + 60 * c] == plain[k], "value " << k << " of slice " << c);
    }
  }
  std::vector<std::size_t> dropped;
  for (std::size_t k = 0; k < plain.size(); ++k) {
    CHECK(plain[k] == 0.0f || plain[k] == scale);
    if (plain[k] == 0.0f) dropped.push_back(k);
  }
  const std::vector<std::size_t> first_version = {4,  5,  6,  9,  10, 11, 13, 16,
                                                  20, 21, 22, 23, 27, 30, 33, 34,
                                                  35, 36, 40, 46, 51, 55, 56};
  CHECK(dropped == first_version);
}
