// The engine's thread pool: every item of a parallel step claimed exactly
// once, by workers numbered below the step's worker count; each worker's
// own share first (where the caller says it ends, if it does), then the
// others'; items that wait for others; the first exception rethrown.
#include <atomic>
#include <stdexcept>
#include <thread>
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
  share_items(shares, 3, 8, nullptr);
  WorkItems first(shares, 3, 0), second(shares, 3, 1);
  std::vector<index_t> order_first, order_second;
  index_t item;
  for (int k = 0; k < 2 && second.next(item); ++k) order_second.push_back(item);
  while (first.next(item)) order_first.push_back(item);
  CHECK(!second.next(item));
  CHECK(order_second == std::vector<index_t>({2, 3}));
  CHECK(order_first == std::vector<index_t>({0, 1, 4, 5, 6, 7}));
}

TEST(parallel_shares_end_where_the_caller_says) {
  ItemShare shares[3];
  const index_t ends[3] = {1, 6, 8};
  share_items(shares, 3, 8, ends);
  WorkItems first(shares, 3, 0), second(shares, 3, 1), third(shares, 3, 2);
  std::vector<index_t> order_third, order_first;
  index_t item;
  while (third.next(item)) order_third.push_back(item);
  for (int k = 0; k < 2 && first.next(item); ++k) order_first.push_back(item);
  CHECK(order_third == std::vector<index_t>({6, 7, 0, 1, 2, 3, 4, 5}));
  CHECK(order_first.empty() && !second.next(item));
}

TEST(parallel_region_rethrows_and_runs_nested_regions_serially) {
  CHECK_THROWS(parallel_region(50, 2,
                               [](WorkItems& items) {
                                 for (index_t item; items.next(item);) {
                                   if (item == 17) throw std::runtime_error("item 17");
                                 }
                               }),
               std::runtime_error);
  std::atomic<int> inner_workers_above_zero{0}, inner_items{0}, inner_region_workers{0};
  CHECK_EQ(region_workers(10, 2), 2);
  CHECK_EQ(region_workers(1, 2), 1);
  parallel_region(4, 2, [&](WorkItems& outer) {
    for (index_t item; outer.next(item);) {
      inner_region_workers += region_workers(10, 2);
      parallel_region(10, 2, [&](WorkItems& inner) {
        if (inner.worker() != 0) ++inner_workers_above_zero;
        for (index_t i; inner.next(i);) ++inner_items;
      });
    }
  });
  CHECK_EQ(inner_workers_above_zero.load(), 0);
  CHECK_EQ(inner_items.load(), 40);
  // region_workers() tells a caller that shares the items out itself
  // (share_ends) that a nested region runs on one thread.
  CHECK_EQ(inner_region_workers.load(), 4);
}

// Items that wait for the item before them finish one after another, on
// any number of threads.
TEST(parallel_items_wait_for_earlier_ones) {
  for (int threads : {1, 2, 3, 5}) {
    const index_t count = 400;
    ItemsDone done;
    done.reset(count);
    std::vector<index_t> finished;
    parallel_region(count, threads, [&](WorkItems& items) {
      for (index_t item; items.next(item);) {
        if (item > 0) done.wait(item - 1);
        const ItemsDone::Finish finish(done, item);
        finished.push_back(item);
      }
    });
    bool ascending = static_cast<index_t>(finished.size()) == count;
    for (index_t i = 0; ascending && i < count; ++i) ascending = finished[i] == i;
    CHECK_MSG(ascending, threads << " threads");
  }
}

// An item that throws marks every item finished, so that a thread waiting
// for an item the step will no longer claim goes on and the step rethrows
// instead of waiting for ever: item 10 throws once item 50, the first of
// the second thread's share, waits for item 20.
TEST(parallel_items_rethrow_without_waiting_for_ever) {
  ItemsDone done;
  done.reset(100);
  std::atomic<bool> fifty_waits{false};
  CHECK_THROWS(parallel_region(100, 2,
                               [&](WorkItems& items) {
                                 for (index_t item; items.next(item);) {
                                   if (item == 50) {
                                     fifty_waits = true;
                                     done.wait(20);
                                   }
                                   const ItemsDone::Finish finish(done, item);
                                   if (item == 10) {
                                     while (!fifty_waits) std::this_thread::yield();
                                     throw std::runtime_error("item 10");
                                   }
                                 }
                               }),
               std::runtime_error);
}
