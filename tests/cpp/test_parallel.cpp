// The engine's thread pool: every item of a parallel step claimed exactly
// once, by workers numbered below the step's worker count; each worker's
// own share first, then the others'; the first exception rethrown.
#include <atomic>
#include <stdexcept>
#include <vector>

#include "check.hpp"
#include "parallel.hpp"

using namespace lcnn;

TEST(parallel_items_claimed_once_by_numbered_workers) {
  for (int threads : {1, 2, 3, 5}) {
    for (index_t count : {0, 1, 2, 3, 7, 100, 1001}) {
      std::vector<std::atomic<int>> claims(static_cast<std::size_t>(count));
      std::atomic<int> bad_worker{0};
      const int workers = workers_for(count, threads);
      parallel_region(count, threads, [&](WorkItems& items) {
        if (items.worker() < 0 || items.worker() >= workers) ++bad_worker;
        for (index_t item; items.next(item);) ++claims[static_cast<std::size_t>(item)];
      });
      int wrong = 0;
      for (const std::atomic<int>& c : claims) wrong += c.load() != 1;
      CHECK_EQ(wrong, 0);
      CHECK_EQ(bad_worker.load(), 0);
    }
  }
}

TEST(parallel_workers_claim_their_share_first_then_the_others) {
  ItemShare shares[3];
  const index_t ends[3] = {3, 5, 8};
  for (int w = 0; w < 3; ++w) {
    shares[w].next.store(w == 0 ? 0 : ends[w - 1]);
    shares[w].end = ends[w];
  }
  WorkItems first(shares, 3, 0), second(shares, 3, 1);
  std::vector<index_t> order_first, order_second;
  index_t item;
  for (int k = 0; k < 2 && second.next(item); ++k) order_second.push_back(item);
  while (first.next(item)) order_first.push_back(item);
  CHECK(!second.next(item));
  CHECK(order_second == std::vector<index_t>({3, 4}));
  CHECK(order_first == std::vector<index_t>({0, 1, 2, 5, 6, 7}));
}

TEST(parallel_region_rethrows_and_runs_nested_regions_serially) {
  CHECK_THROWS(parallel_region(50, 2,
                               [](WorkItems& items) {
                                 for (index_t item; items.next(item);) {
                                   if (item == 17) throw std::runtime_error("item 17");
                                 }
                               }),
               std::runtime_error);
  std::atomic<int> inner_workers_above_zero{0}, inner_items{0};
  parallel_region(4, 2, [&](WorkItems& outer) {
    for (index_t item; outer.next(item);) {
      parallel_region(10, 2, [&](WorkItems& inner) {
        if (inner.worker() != 0) ++inner_workers_above_zero;
        for (index_t i; inner.next(i);) ++inner_items;
      });
    }
  });
  CHECK_EQ(inner_workers_above_zero.load(), 0);
  CHECK_EQ(inner_items.load(), 40);
}
