// Trainer: gathering a batch of samples out of R's column-major data.
#include <stdexcept>
#include <vector>

#include "check.hpp"
#include "trainer.hpp"

using namespace lcnn;

namespace {

// Sample i of feature f of the data below, exact in float.
double value_of(index_t i, index_t f) { return 100.0 * static_cast<double>(f) + i + 0.25; }

}  // namespace

// Consecutive rows take a run copy (converted eight values at a time, then
// one by one), any other order a copy through each row index; both must
// give sample-major batches, in float and in double, whatever the rows are.
// 6,000 features make more than one parallel block (16,384 values each).
TEST(trainer_gather_rows_runs_and_indices) {
  const index_t n = 11, features = 6000;
  std::vector<double> data(static_cast<std::size_t>(n * features));
  for (index_t f = 0; f < features; ++f) {
    for (index_t i = 0; i < n; ++i) data[f * n + i] = value_of(i, f);
  }
  const Array from{data.data(), n * features};
  const std::vector<std::vector<index_t>> batches = {
      {0, 1, 2, 3}, {4, 5, 6}, {8, 9, 10}, {7}, {10}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
      {1, 2, 3, 4, 5, 6, 7, 8}, {3, 4, 6}, {9, 8, 7}, {2, 2, 3}, {5, 0}};
  for (const std::vector<index_t>& rows : batches) {
    const index_t count = static_cast<index_t>(rows.size());
    for (int threads : {1, 2}) {
      Tensor<float> to;
      to.resize(Shape{{count, 2, 3000}});
      gather_rows(from, n, rows.data(), count, threads, to);
      Tensor<double> to_double;
      to_double.resize(Shape{{count, 6000}});
      gather_rows(from, n, rows.data(), count, threads, to_double);
      index_t wrong = 0;
      for (index_t f = 0; f < features; ++f) {
        for (index_t i = 0; i < count; ++i) {
          wrong += to.data[f * count + i] != static_cast<float>(value_of(rows[i], f));
          wrong += to_double.data[f * count + i] != value_of(rows[i], f);
        }
      }
      CHECK_EQ(wrong, 0);
    }
  }
  Tensor<double> too_small;
  too_small.resize(Shape{{2, 5}});
  const std::vector<index_t> rows = {0, 1};
  CHECK_THROWS(gather_rows(from, n, rows.data(), 2, 1, too_small), std::invalid_argument);
}
