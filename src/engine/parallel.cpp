#include "parallel.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <thread>
#include <vector>

#if defined(__SSE2__) || defined(_M_X64)
#include <xmmintrin.h>
#endif
#if !defined(_WIN32)
#include <pthread.h>
#include <signal.h>
#endif
#if defined(__linux__)
#include <sched.h>
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#endif

namespace lcnn {
namespace {

// Long enough that a worker is still awake for the next step of a batch (the
// serial code between steps takes microseconds), short enough that a wait
// costs little when another process needs the core.
constexpr std::chrono::microseconds kSpin(100);

// How long ItemsDone::wait() spins before it yields the core: a few
// microseconds, less than one item (a locally connected position) takes.
// An item that keeps another waiting longer is mostly one whose thread
// has lost its core to another thread, which the waiter's spinning would
// keep from running (bench/NOTES.md).
constexpr int kItemSpins = 64;

void cpu_relax() {
#if defined(__SSE2__) || defined(_M_X64)
  _mm_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

// Spins until ready() or kSpin has passed; returns ready().
template <typename Ready>
bool spin_until(Ready ready) {
  const auto until = std::chrono::steady_clock::now() + kSpin;
  for (unsigned i = 1;; ++i) {
    if (ready()) return true;
    cpu_relax();
    if (i % 64 == 0 && std::chrono::steady_clock::now() > until) return ready();
  }
}

#if defined(__SSE2__) || defined(_M_X64)
constexpr unsigned kFlushBits = 0x8040;  // MXCSR: flush-to-zero (15), denormals-are-zero (6)
unsigned long long read_fp_control() { return _mm_getcsr(); }
void write_fp_control(unsigned long long value) { _mm_setcsr(static_cast<unsigned>(value)); }
#elif defined(__aarch64__)
constexpr unsigned long long kFlushBits = 1ull << 24;  // FPCR.FZ
unsigned long long read_fp_control() {
  unsigned long long value;
  __asm__ __volatile__("mrs %0, fpcr" : "=r"(value));
  return value;
}
void write_fp_control(unsigned long long value) { __asm__ __volatile__("msr fpcr, %0" : : "r"(value)); }
#else
constexpr unsigned long long kFlushBits = 0;
unsigned long long read_fp_control() { return 0; }
void write_fp_control(unsigned long long) {}
#endif

// Set while a thread runs a region, so that nested regions run serially.
thread_local bool in_region = false;

class Pool {
 public:
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

  void run(index_t count, int workers, const std::function<void(WorkItems&)>& region,
           const index_t* share_ends) {
    add_threads(workers - 1);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      region_ = &region;
      workers_ = workers;
      share_items(shares_.get(), workers, count, share_ends);
      open_ = true;
      error_ = nullptr;
      generation_.fetch_add(1, std::memory_order_release);
      if (sleeping_ > 0) wake_.notify_all();
    }
    run_share(region, 0);
    // A thread that has not joined by now would find nothing left to do.
    std::unique_lock<std::mutex> lock(mutex_);
    open_ = false;
    if (busy_.load(std::memory_order_acquire) > 0) {
      lock.unlock();
      if (!spin_until([&] { return busy_.load(std::memory_order_acquire) == 0; })) {
        lock.lock();
        finished_.wait(lock, [&] { return busy_.load(std::memory_order_acquire) == 0; });
        lock.unlock();
      }
      lock.lock();
    }
    if (error_) std::rethrow_exception(error_);
  }

  void post(index_t count, int threads, const std::function<void(index_t)>& item) {
    if (threads > 1) add_threads(threads - 1);
    std::lock_guard<std::mutex> lock(mutex_);
    background_ = &item;
    background_count_ = count;
    background_next_ = 0;
    background_error_ = nullptr;
    background_workers_.store(threads, std::memory_order_relaxed);
    background_left_.store(count, std::memory_order_release);
    if (sleeping_ > 0 && threads > 1) wake_.notify_all();
  }

  std::exception_ptr finish(bool discard) {
    if (discard) {
      std::lock_guard<std::mutex> lock(mutex_);
      background_next_ = background_count_;
      background_left_.store(0, std::memory_order_relaxed);
    }
    while (run_background_item(0)) {
    }
    const auto finished = [&] { return background_running_.load(std::memory_order_acquire) == 0; };
    std::unique_lock<std::mutex> lock(mutex_, std::defer_lock);
    if (spin_until(finished)) {
      lock.lock();
    } else {
      lock.lock();
      background_finished_.wait(lock, finished);
    }
    background_ = nullptr;
    background_count_ = background_next_ = 0;
    std::exception_ptr error = background_error_;
    background_error_ = nullptr;
    return error;
  }

 private:
  void add_threads(int wanted) {
    if (static_cast<int>(threads_.size()) >= wanted) return;
    shares_.reset(new ItemShare[wanted + 1]);
#if !defined(_WIN32)
    // Signals (R's interrupt among them) go to R's thread, never to a worker.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
#endif
    while (static_cast<int>(threads_.size()) < wanted) {
      const int worker = static_cast<int>(threads_.size()) + 1;
      threads_.emplace_back([this, worker] { work(worker); });
    }
#if !defined(_WIN32)
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
#endif
  }

  void run_share(const std::function<void(WorkItems&)>& region, int worker) {
    WorkItems items(shares_.get(), workers_, worker);
    in_region = true;
    try {
      region(items);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
      // The other threads stop at their next claim.
      for (int w = 0; w < workers_; ++w) {
        shares_[w].next.store(shares_[w].end, std::memory_order_relaxed);
      }
    }
    in_region = false;
  }

  // Whether background items are left that worker `worker` may take.
  bool background_for(int worker) const {
    return worker < background_workers_.load(std::memory_order_relaxed) &&
           background_left_.load(std::memory_order_acquire) > 0;
  }

  // Claims one background item for worker `worker` and runs it; false when
  // none is left for it.
  bool run_background_item(int worker) {
    index_t item;
    const std::function<void(index_t)>* body;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (worker >= background_workers_.load(std::memory_order_relaxed) ||
          background_next_ >= background_count_) {
        return false;
      }
      item = background_next_++;
      background_left_.store(background_count_ - background_next_, std::memory_order_relaxed);
      body = background_;
      background_running_.fetch_add(1, std::memory_order_relaxed);
    }
    std::exception_ptr error;
    const bool was_in_region = in_region;
    in_region = true;
    try {
      (*body)(item);
    } catch (...) {
      error = std::current_exception();
    }
    in_region = was_in_region;
    std::lock_guard<std::mutex> lock(mutex_);
    if (error && !background_error_) background_error_ = error;
    if (background_running_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      background_finished_.notify_all();
    }
    return true;
  }

  // The pool's thread that is always worker `worker` (the caller is 0), so
  // that it starts on the same share of every step. Between regions it
  // runs the background items it may take.
  void work(int worker) {
    write_fp_control(read_fp_control() | kFlushBits);
    std::uint64_t seen = 0;
    for (;;) {
      const auto changed = [&] { return generation_.load(std::memory_order_acquire) != seen; };
      const auto called = [&] { return changed() || background_for(worker); };
      std::unique_lock<std::mutex> lock(mutex_, std::defer_lock);
      if (spin_until(called)) {
        lock.lock();
      } else {
        lock.lock();
        ++sleeping_;
        wake_.wait(lock, called);
        --sleeping_;
      }
      if (stopping_) return;
      if (!changed()) {
        lock.unlock();
        while (!changed() && run_background_item(worker)) {
        }
        continue;
      }
      seen = generation_.load(std::memory_order_relaxed);
      if (!open_ || worker >= workers_) continue;
      busy_.fetch_add(1, std::memory_order_relaxed);
      const std::function<void(WorkItems&)>& region = *region_;
      lock.unlock();
      run_share(region, worker);
      lock.lock();
      if (busy_.fetch_sub(1, std::memory_order_acq_rel) == 1) finished_.notify_one();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_, finished_;
  std::vector<std::thread> threads_;
  // The current region; the fields without atomics change under mutex_.
  const std::function<void(WorkItems&)>* region_ = nullptr;
  int workers_ = 1;
  std::unique_ptr<ItemShare[]> shares_;  // one per thread that may join, the caller's first
  std::atomic<std::uint64_t> generation_{0};
  bool open_ = false;       // whether threads may still join the region
  std::atomic<int> busy_{0};  // joined threads not yet done with it
  int sleeping_ = 0;
  bool stopping_ = false;
  std::exception_ptr error_;
  // The background items (post()); the fields without atomics change under mutex_.
  const std::function<void(index_t)>* background_ = nullptr;
  index_t background_count_ = 0, background_next_ = 0;
  std::atomic<int> background_workers_{1};      // the threads that may take them
  std::atomic<index_t> background_left_{0};     // not yet claimed
  std::atomic<int> background_running_{0};      // claimed, not yet done
  std::condition_variable background_finished_;
  std::exception_ptr background_error_;
};

// The pool, started on first use. A forked child has only the thread that
// forked: it drops the parent's pool (whose threads and locks it does not
// own) and starts its own if asked to.
Pool* pool = nullptr;
bool forked = false;

#if !defined(_WIN32)
void on_fork_child() {
  pool = nullptr;
  forked = true;
}
[[maybe_unused]] const bool fork_handler_registered = pthread_atfork(nullptr, nullptr, on_fork_child) == 0;
#endif

int count_cores() {
#if defined(__linux__)
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof allowed, &allowed) == 0) {
    // Hyperthreads of one core share its package and core ids.
    std::set<std::pair<std::string, std::string>> cores;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (!CPU_ISSET(cpu, &allowed)) continue;
      const std::string dir = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
      std::string package, core;
      std::ifstream(dir + "physical_package_id") >> package;
      std::ifstream(dir + "core_id") >> core;
      if (package.empty() || core.empty()) core = "cpu" + std::to_string(cpu);
      cores.emplace(package, core);
    }
    if (!cores.empty()) return static_cast<int>(cores.size());
  }
#elif defined(__APPLE__)
  int cores = 0;
  std::size_t size = sizeof cores;
  if (sysctlbyname("hw.physicalcpu", &cores, &size, nullptr, 0) == 0 && cores > 0) return cores;
#endif
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace

int available_cores() {
  static const int cores = count_cores();
  return cores;
}

int region_workers(index_t items, int threads) {
  return in_region ? 1 : workers_for(items, threads);
}

void share_items(ItemShare* shares, int workers, index_t count, const index_t* share_ends) {
  for (int w = 0; w < workers; ++w) {
    shares[w].next.store(share_ends ? (w == 0 ? 0 : share_ends[w - 1]) : count * w / workers,
                         std::memory_order_relaxed);
    shares[w].end = share_ends ? share_ends[w] : count * (w + 1) / workers;
  }
}

void parallel_region(index_t count, int threads, const std::function<void(WorkItems&)>& region,
                     const index_t* share_ends) {
  const int workers = region_workers(count, threads);
  if (workers == 1) {
    ItemShare all;
    all.end = count;
    WorkItems items(&all, 1, 0);
    region(items);
    return;
  }
  if (pool == nullptr) pool = new Pool();
  pool->run(count, workers, region, share_ends);
}

// No items (a step with no next batch) leave the pool alone: a post would
// wake its sleeping threads for nothing.
BackgroundItems::BackgroundItems(index_t count, int threads, std::function<void(index_t)> item)
    : item_(std::move(item)), finished_(count == 0) {
  if (finished_) return;
  if (pool == nullptr) pool = new Pool();
  pool->post(count, threads, item_);
}

BackgroundItems::~BackgroundItems() {
  if (!finished_) pool->finish(true);
}

void BackgroundItems::finish() {
  if (finished_) return;
  finished_ = true;
  if (std::exception_ptr error = pool->finish(false)) std::rethrow_exception(error);
}

void ItemsDone::reset(index_t count) {
  if (count > capacity_) {
    flags_.reset(new std::atomic<bool>[count]);
    capacity_ = count;
  }
  count_ = count;
  for (index_t i = 0; i < count; ++i) flags_[i].store(false, std::memory_order_relaxed);
}

void ItemsDone::wait(index_t item) const {
  const auto finished = [&] { return flags_[item].load(std::memory_order_acquire); };
  for (int i = 0; i < kItemSpins; ++i) {
    if (finished()) return;
    cpu_relax();
  }
  while (!finished()) std::this_thread::yield();
}

ItemsDone::Finish::~Finish() {
  if (std::uncaught_exceptions() > exceptions_) {
    for (index_t i = 0; i < done_.count_; ++i) {
      done_.flags_[i].store(true, std::memory_order_release);
    }
  } else {
    done_.flags_[item_].store(true, std::memory_order_release);
  }
}

FlushDenormals::FlushDenormals() : saved_(read_fp_control()) {
  write_fp_control(saved_ | kFlushBits);
}

FlushDenormals::~FlushDenormals() { write_fp_control(saved_); }

bool in_forked_child() { return forked; }

void stop_threads() {
  delete pool;
  pool = nullptr;
}

}  // namespace lcnn
