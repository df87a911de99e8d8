// The engine's thread pool: every item of a parallel step claimed exactly
// once, by workers numbered below the step's worker count; each worker's
// own share first (where the caller says it ends, if it does), then the
// others'; items that wait for others; the first exception rethrown;
// background items between regions.
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
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

namespace {

// What a set of background items saw: how often each ran, on which threads.
struct BackgroundRecord {
  explicit BackgroundRecord(index_t count) : runs(static_cast<std::size_t>(count)) {}
  std::vector<std::atomic<int>> runs;
  std::mutex mutex;
  std::set<std::thread::id> threads;
  void ran(index_t item) {
    ++runs[static_cast<std::size_t>(item)];
    const std::lock_guard<std::mutex> lock(mutex);
    threads.insert(std::this_thread::get_id());
  }
  int total() const {
    int sum = 0;
    for (const std::atomic<int>& r : runs) sum += r.load();
    return sum;
  }
  bool each_once() const {
    for (const std::atomic<int>& r : runs) {
      if (r.load() != 1) return false;
    }
    return true;
  }
};

}  // namespace

// With one thread nothing runs the items but finish(), on the caller; a
// set of no items runs nothing.
TEST(parallel_background_items_on_one_thread_run_at_finish) {
  parallel_region(20, 5, [](WorkItems& items) {  // the pool has four threads of its own
    for (index_t item; items.next(item);) {
    }
  });
  BackgroundRecord record(30);
  BackgroundItems background(30, 1, [&](index_t item) { record.ran(item); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK_EQ(record.total(), 0);
  background.finish();
  CHECK(record.each_once());
  CHECK(record.threads == std::set<std::thread::id>({std::this_thread::get_id()}));
  BackgroundItems none(0, 2, [&](index_t item) { record.ran(item); });
  none.finish();
  CHECK(record.each_once());
}

// A waiting pool thread takes the items up on its own, and only threads
// numbered below `threads` do, whatever else the pool holds.
TEST(parallel_background_items_run_by_waiting_threads) {
  parallel_region(20, 5, [](WorkItems& items) {
    for (index_t item; items.next(item);) {
    }
  });
  BackgroundRecord record(30);
  BackgroundItems background(30, 2, [&](index_t item) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));  // long enough to share
    record.ran(item);
  });
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (record.total() < 30 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK_EQ(record.total(), 30);
  background.finish();
  CHECK(record.each_once());
  CHECK_EQ(record.threads.size(), 1u);
  CHECK(record.threads.count(std::this_thread::get_id()) == 0);
}

// Regions run while items are pending; each runs its items once, and a
// region an item starts runs on that item's thread alone.
TEST(parallel_background_items_leave_room_for_regions) {
  BackgroundRecord record(200);
  std::atomic<int> nested_workers{0};
  BackgroundItems background(200, 2, [&](index_t item) {
    nested_workers += region_workers(10, 2);
    std::this_thread::sleep_for(std::chrono::microseconds(20));
    record.ran(item);
  });
  for (int step = 0; step < 50; ++step) {
    std::vector<std::atomic<int>> claims(64);
    parallel_region(64, 2, [&](WorkItems& items) {
      for (index_t item; items.next(item);) ++claims[static_cast<std::size_t>(item)];
    });
    int wrong = 0;
    for (const std::atomic<int>& c : claims) wrong += c.load() != 1;
    CHECK_EQ(wrong, 0);
  }
  background.finish();
  CHECK(record.each_once());
  CHECK_EQ(nested_workers.load(), 200);
}

// finish() rethrows the first exception after running the other items;
// items dropped unfinished (an exception on its way) run at most once, and
// the caller waits for those a thread has started.
TEST(parallel_background_items_rethrow_or_drop) {
  BackgroundRecord record(40);
  BackgroundItems failing(40, 2, [&](index_t item) {
    record.ran(item);
    if (item == 7) throw std::runtime_error("item 7");
  });
  CHECK_THROWS(failing.finish(), std::runtime_error);
  CHECK(record.each_once());

  BackgroundRecord dropped(1000);
  std::atomic<bool> started{false};
  try {
    BackgroundItems background(1000, 2, [&](index_t item) {
      started = true;
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      dropped.ran(item);
    });
    while (!started) std::this_thread::yield();
    throw std::runtime_error("step failed");
  } catch (const std::runtime_error&) {
  }
  const int ran = dropped.total();
  CHECK(ran >= 1 && ran < 1000);
  bool at_most_once = true;
  for (const std::atomic<int>& r : dropped.runs) at_most_once = at_most_once && r.load() <= 1;
  CHECK(at_most_once);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK_EQ(dropped.total(), ran);
}
