// The engine's threads: a pool of its own rather than OpenMP, because
// OpenMP's threads spin at every barrier for as long as libgomp was told when
// R started (about 20 ms by default), so a training step of many short
// parallel steps collapsed to a fraction of one thread's speed whenever
// another process held a core (bench/NOTES.md, "Threads and subnormals").
// Here a thread that waits spins for at most 100 microseconds, then sleeps.
// Each thread starts on a contiguous share of a step's items, the same share
// from one step to the next, so that the data a step writes tend to be read
// by the same core in the next one (claiming items from one shared counter
// moved them between the cores' caches: bench/NOTES.md). Items are still
// claimed one at a time, and a thread that runs out takes the others'
// remaining items, so a thread whose core is taken leaves its share to the
// others, and a step of independent items never waits for a thread that
// has not started on it yet.
//
// Items must be fixed by the problem size, never by the thread count, and
// each must write its own outputs, or wait (ItemsDone) for the items that
// write the same ones before it, in an order fixed by the problem: then
// results are the same for any number of threads and whichever thread runs
// which item.
#pragma once

#include <algorithm>
#include <atomic>
#include <exception>
#include <functional>
#include <memory>

#include "tensor.hpp"

namespace lcnn {

// Where one worker's share of a parallel step's items stands: the next item
// of its share to claim and the end of the share. On a cache line of its
// own, so that claims from different shares never contend.
struct alignas(64) ItemShare {
  std::atomic<index_t> next{0};
  index_t end = 0;
};

// The items of one parallel step, shared by the threads that run it. Worker
// w first claims items from its own share, the w-th of `workers` contiguous
// ranges, then from the others' in turn: a thread's items are then the same
// from one step to the next (and its data stay in its core's caches), while
// a thread that is late or slow still leaves its share to the others.
class WorkItems {
 public:
  WorkItems(ItemShare* shares, int workers, int worker)
      : shares_(shares), workers_(workers), worker_(worker) {}
  // Claims the next unclaimed item; false when none is left.
  bool next(index_t& item) {
    for (int k = 0; k < workers_; ++k) {
      ItemShare& share = shares_[(worker_ + k) % workers_];
      if (share.next.load(std::memory_order_relaxed) >= share.end) continue;
      item = share.next.fetch_add(1, std::memory_order_relaxed);
      if (item < share.end) return true;
    }
    return false;
  }
  // This thread's number in [0, workers_for(count, threads)): no two threads
  // of a step share it, so it can pick per-thread scratch space.
  int worker() const { return worker_; }

 private:
  ItemShare* shares_;
  int workers_;
  int worker_;
};

// How many threads a step of `items` items on `threads` threads uses.
inline int workers_for(index_t items, int threads) {
  return static_cast<int>(std::max<index_t>(1, std::min<index_t>(threads, items)));
}

// How many threads a parallel_region() of `items` items on `threads`
// threads started here uses: workers_for(), or 1 inside a region (a nested
// region runs on its caller's thread).
int region_workers(index_t items, int threads);

// Sets shares[0, workers) for a step of `count` items: worker w's share is
// [count * w / workers, count * (w + 1) / workers), or with share_ends not
// null [share_ends[w - 1], share_ends[w]) (from 0 for the first; the last
// end must be count).
void share_items(ItemShare* shares, int workers, index_t count, const index_t* share_ends);

// Runs region(items) on workers_for(count, threads) threads, the caller's
// among them; each claims items until none is left. Returns when every item
// is done; rethrows the first exception a thread threw. A call from inside
// a region runs on the calling thread alone. share_ends, if given, holds
// region_workers(count, threads) ends of the workers' shares (share_items()).
void parallel_region(index_t count, int threads, const std::function<void(WorkItems&)>& region,
                     const index_t* share_ends = nullptr);

// Work that the pool's threads take up while no region needs them: the
// items of a later step, posted while the current one runs layers too small
// to share (a classifier's last dense layer and its loss), during which
// the other threads would only wait. The pool's threads numbered below
// `threads` (the caller is 0) each claim the items one at a time between
// regions, and join a region once their item is done, so items should be
// short (a few microseconds). finish() runs on the caller the items that
// no thread has claimed, waits for those being run, and rethrows the first
// exception an item threw. Destroyed unfinished (an exception on its way),
// it drops the unclaimed items and waits for the others. An item runs
// outside any region (a region it starts runs on its thread alone), in no
// fixed order and on any of those threads. One object at a time; one of
// no items does nothing.
class BackgroundItems {
 public:
  BackgroundItems(index_t count, int threads, std::function<void(index_t)> item);
  ~BackgroundItems();
  void finish();
  BackgroundItems(const BackgroundItems&) = delete;
  BackgroundItems& operator=(const BackgroundItems&) = delete;

 private:
  std::function<void(index_t)> item_;
  bool finished_ = false;
};

// Which items of a step are finished, for items that must wait for some
// others (those that write what they write too, in an order fixed by the
// problem): a barrier between groups of independent items would leave
// threads idle at each group's end. The caller gives each item a level,
// lets it wait only for items of lower levels, and lists each share's
// items level by level (share_ends): a thread then waits only for threads
// that run or will start, and the step finishes.
class ItemsDone {
 public:
  // `count` items, none finished.
  void reset(index_t count);
  // Returns once `item` is finished; spins, then yields the core.
  void wait(index_t item) const;

  // Marks its item finished when it goes out of scope. When the item
  // throws, marks every item finished instead: the step claims no more
  // items and rethrows, and no thread may wait for ever for an item that
  // will not run.
  class Finish {
   public:
    Finish(ItemsDone& done, index_t item)
        : done_(done), item_(item), exceptions_(std::uncaught_exceptions()) {}
    ~Finish();
    Finish(const Finish&) = delete;
    Finish& operator=(const Finish&) = delete;

   private:
    ItemsDone& done_;
    index_t item_;
    int exceptions_;
  };

 private:
  std::unique_ptr<std::atomic<bool>[]> flags_;
  index_t count_ = 0, capacity_ = 0;
};

// body(start, length) over the blocks of `block` values of [0, n), in parallel.
template <typename Body>
void for_each_block(index_t n, index_t block, int threads, Body body) {
  const index_t blocks = (n + block - 1) / block;
  parallel_region(blocks, threads, [&](WorkItems& items) {
    for (index_t k; items.next(k);) body(k * block, std::min(block, n - k * block));
  });
}

// Sets flush-to-zero and denormals-are-zero on the calling thread while it
// lives, as TensorFlow does around its CPU kernels: arithmetic on subnormal
// floats is up to 100 times slower on x86, and optimizer moments decay into
// them. The engine's own threads always run so; entry points from R hold
// one of these so that R's arithmetic afterwards is as before.
class FlushDenormals {
 public:
  FlushDenormals();
  ~FlushDenormals();
  FlushDenormals(const FlushDenormals&) = delete;
  FlushDenormals& operator=(const FlushDenormals&) = delete;

 private:
  unsigned long long saved_;
};

// The physical cores (not hyperthreads) among the CPUs this process may run
// on, at least 1; counted on first use.
int available_cores();

// True in a process forked after the engine was loaded (parallel::mclapply's
// workers): such processes default to one thread (see lcnn_num_threads()).
bool in_forked_child();

// Ends the pool's threads (before the shared library is unloaded).
void stop_threads();

}  // namespace lcnn
