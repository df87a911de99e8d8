// predict()'s results of at least a large page each live in a mapping of
// their own (allocVector3() with a custom allocator) rather than in R's
// heap. From R's heap a loop of predict() calls pays twice for every
// result of tens of MB (bench/NOTES.md, W1: 7.2 against 4.4 ms a call):
// R's collector runs for nearly every one, because R's vector heap grows
// little while what it frees is garbage, and glibc trims its heap when the
// collector frees two results, so that the next ones fault their pages in
// afresh. A mapping of its own is 2 MiB-aligned with huge pages asked for
// (map_block()).
//
// R does not count such vectors in its heap, so it would not collect them
// on their account: lcnn counts the bytes of its results that R has not
// freed yet, and runs R's collector (collect_results()) before a result
// would take that count past a budget, twice what was left after its last
// collection and at least kMinBudgetBytes. R's collector also frees them
// whenever it runs for its own reasons.
//
// A freed result's block waits in a pool for the next result of its size,
// its pages lazily freed (free_pages_lazily()): the kernel takes them back
// only when it runs short of memory, and a result written into them
// skips clearing fresh pages, a quarter of W1's call (bench/NOTES.md).
// Pooled and unfreed bytes together stay within the budget: a freed
// result moves from one count to the other, a result that finds no block
// of its size unmaps the oldest pooled ones it needs room for, and each of
// lcnn's collections cuts the pool to its new budget. So the pool raises
// no peak. The whole pool goes back when R's collector has run twice for
// its own reasons with no result made in between (the sentinels below): a
// session holds none of it once it stops predicting, and results R frees
// after that are unmapped at once. The trainer's copies of the data take
// their blocks from the same pool (take_trainer_block()), and so do the
// parameters and optimizer state that a fit() call copies into R at its
// end (rcpp_trainer.cpp).
#include "rcpp_result_memory.h"

#include <R_ext/Rallocators.h>

#include <algorithm>
#include <cstddef>
#include <new>
#include <vector>

#include "engine/buffer.hpp"

namespace {

constexpr std::size_t kMinBudgetBytes = std::size_t(256) << 20;
// What a result's allocator points to (R_allocator_t::data): the pages of
// a new mapping for it.
lcnn::PageSize base_pages = lcnn::PageSize::base, large_pages = lcnn::PageSize::large;
// The block's size, kept in front of what R is given, for unmap_result().
// 16 bytes, so that R's vector header stays as aligned as malloc()'s.
constexpr std::size_t kSizeBytes = 16;

struct PooledBlock {
  void* start;
  std::size_t bytes;
};

struct ResultMemory {
  std::size_t unfreed_bytes = 0;
  std::size_t pooled_bytes = 0;
  std::size_t budget_bytes = kMinBudgetBytes;
  std::vector<PooledBlock> pool;
  // watch_collections()'s sentinels, each null once its finalizer has run.
  SEXP first_sentinel = nullptr;
  SEXP last_sentinel = nullptr;
  double collections = 0;
  double reuses = 0;
};

ResultMemory memory;

void unmap_pooled(const PooledBlock& block) {
  memory.pooled_bytes -= block.bytes;
  lcnn::unmap_block(block.start, block.bytes);
}

// Unmaps pooled blocks, oldest first, until `bytes` more fit in the budget
// beside the unfreed results and the rest of the pool.
void unmap_oldest_past_budget(std::size_t bytes) {
  while (!memory.pool.empty() &&
         memory.unfreed_bytes + memory.pooled_bytes + bytes > memory.budget_bytes) {
    unmap_pooled(memory.pool.front());
    memory.pool.erase(memory.pool.begin());
  }
}

// A pooled block of `bytes`, out of the pool; nullptr when none has that
// size.
void* take_pooled(std::size_t bytes) {
  const auto pooled = std::find_if(memory.pool.rbegin(), memory.pool.rend(),
                                   [&](const PooledBlock& block) { return block.bytes == bytes; });
  if (pooled == memory.pool.rend()) return nullptr;
  void* start = pooled->start;
  memory.pooled_bytes -= bytes;
  memory.pool.erase(std::next(pooled).base());
  memory.reuses += 1;
  return start;
}

// A block of `bytes` (whole pages): a pooled one of that size (on the
// pages it was mapped with), else a new mapping on `pages`, after
// unmapping the oldest pooled blocks it needs room for.
void* take_block(std::size_t bytes, lcnn::PageSize pages) {
  if (void* start = take_pooled(bytes)) return start;
  unmap_oldest_past_budget(bytes);
  return lcnn::map_block(bytes, pages);
}

// Puts a block of `bytes` in the pool, its pages lazily freed, while R's
// collections are watched (watch_collections()); else unmaps it. Runs
// within R's collector too: no R allocation here, and nothing thrown.
void pool_or_unmap(void* start, std::size_t bytes) noexcept {
  if (memory.last_sentinel != nullptr) {
    try {
      memory.pool.push_back({start, bytes});
      memory.pooled_bytes += bytes;
      lcnn::free_pages_lazily(start, bytes);
      return;
    } catch (...) {
    }
  }
  lcnn::unmap_block(start, bytes);
}

// R keeps a copy of the allocator with the vector, its data pointing to
// base_pages or large_pages.
void* map_result(R_allocator_t* allocator, std::size_t bytes) {
  const std::size_t block_bytes = lcnn::whole_pages(bytes + kSizeBytes);
  void* start = take_block(block_bytes, *static_cast<const lcnn::PageSize*>(allocator->data));
  if (start == nullptr) return nullptr;
  *static_cast<std::size_t*>(start) = block_bytes;
  memory.unfreed_bytes += block_bytes;
  return static_cast<char*>(start) + kSizeBytes;
}

void unmap_result(R_allocator_t*, void* data) {
  void* start = static_cast<char*>(data) - kSizeBytes;
  const std::size_t bytes = *static_cast<std::size_t*>(start);
  memory.unfreed_bytes -= bytes;
  pool_or_unmap(start, bytes);
}

// The trainer's blocks (lcnn::BlockArray: its sample-major copies of the
// data, made once per fit() call). Those of a large page or more come
// from the pool too, so that a fit() call after another over data of the
// same size writes its copy into the last one's pages rather than faulting
// fresh ones in: the copy of Fashion-MNIST's 60,000 images (188 MB) took
// 29-32 ms there against 58 on fresh pages (bench/NOTES.md). On base
// pages: a huge page the system has never handed out before can take far
// longer to fault in (0.3 s for that copy on the benchmark machine,
// against 0.06 s), and the batches read the copy a sample at a time, so
// the TLB gains nothing. A block goes back to the pool, after the oldest
// pooled blocks it needs room for, where it fits in the budget beside the
// results R has not freed; else it is unmapped. Smaller blocks come from
// the C++ heap.
bool pools_trainer_block(std::size_t bytes) {
  return bytes >= lcnn::kLargePageBytes && lcnn::maps_blocks();
}

void* take_trainer_block(std::size_t bytes) {
  if (!pools_trainer_block(bytes)) {
    return ::operator new(bytes, std::align_val_t(lcnn::kLineBytes));
  }
  void* start = take_block(lcnn::whole_pages(bytes), lcnn::PageSize::base);
  if (start == nullptr) throw std::bad_alloc();
  return start;
}

void give_back_trainer_block(void* start, std::size_t bytes) noexcept {
  if (!pools_trainer_block(bytes)) {
    ::operator delete(start, std::align_val_t(lcnn::kLineBytes));
    return;
  }
  const std::size_t block_bytes = lcnn::whole_pages(bytes);
  // No room even with the pool empty: the pooled blocks stay.
  if (memory.unfreed_bytes + block_bytes > memory.budget_bytes) {
    lcnn::unmap_block(start, block_bytes);
    return;
  }
  unmap_oldest_past_budget(block_bytes);
  pool_or_unmap(start, block_bytes);
}

// Two sentinels tell lcnn when R's collector has run twice for its own
// reasons with no result made in between: the first, unreferenced, is
// finalized by the next collection and releases the second, which a
// collection after that finalizes; that one unmaps the pool. Each result,
// and each fit() call as it gives its blocks back, arms a new first
// sentinel where the last one has gone, so the pool lasts while results or
// fit() calls keep coming. A finalizer registers no new sentinel itself,
// since R can lose a weak reference registered while it runs finalizers.
// lcnn's own collections keep both alive (collect_results()).
void on_first_sentinel(SEXP sentinel) {
  memory.first_sentinel = nullptr;
  R_ReleaseObject(R_ExternalPtrProtected(sentinel));
}

void on_last_sentinel(SEXP) {
  memory.last_sentinel = nullptr;
  for (const PooledBlock& block : memory.pool) unmap_pooled(block);
  memory.pool.clear();
}

// R's collector, of the youngest generation first (`gc(full = FALSE)`):
// that frees the results no collection has yet found alive, most of them
// in a loop of predict() calls, at a fraction of a full collection's cost.
// A result alive at a collection is promoted to an older generation, which
// only a fuller collection frees, so a full one follows when the young one
// leaves the count above half the budget (bench/NOTES.md: a loop's
// collections 43% shorter than with full ones only). Then the pool is cut
// to what the new budget leaves beside the unfreed results.
void collect_results(std::size_t bytes) {
  PROTECT(memory.first_sentinel == nullptr ? R_NilValue : memory.first_sentinel);
  PROTECT(memory.last_sentinel == nullptr ? R_NilValue : memory.last_sentinel);
  SEXP call =
      PROTECT(Rf_lang3(Rf_install("gc"), Rf_ScalarLogical(FALSE), Rf_ScalarLogical(FALSE)));
  SET_TAG(CDR(call), Rf_install("verbose"));
  SET_TAG(CDDR(call), Rf_install("full"));
  Rf_eval(call, R_BaseEnv);
  if (memory.unfreed_bytes + bytes > memory.budget_bytes / 2) R_gc();
  UNPROTECT(3);
  memory.collections += 1;
  memory.budget_bytes = std::max(kMinBudgetBytes, 2 * memory.unfreed_bytes);
  unmap_oldest_past_budget(0);
}

}  // namespace

void lcnn::watch_collections() {
  if (memory.first_sentinel != nullptr) return;
  if (memory.last_sentinel == nullptr) {
    memory.last_sentinel = R_MakeExternalPtr(nullptr, R_NilValue, R_NilValue);
    R_PreserveObject(memory.last_sentinel);
    R_RegisterCFinalizerEx(memory.last_sentinel, on_last_sentinel, FALSE);
  } else {
    R_PreserveObject(memory.last_sentinel);
  }
  SEXP first = PROTECT(R_MakeExternalPtr(nullptr, R_NilValue, memory.last_sentinel));
  R_RegisterCFinalizerEx(first, on_first_sentinel, FALSE);
  memory.first_sentinel = first;
  UNPROTECT(1);
}

namespace {

// An R vector of `n` values of `type`, `bytes` in all, not initialised:
// in the pool's memory from a large page on, a new mapping on `pages`.
SEXP pooled_vector(SEXPTYPE type, R_xlen_t n, std::size_t bytes, lcnn::PageSize pages) {
  if (bytes < lcnn::kLargePageBytes || !lcnn::maps_blocks()) return Rf_allocVector(type, n);
  if (memory.unfreed_bytes + bytes > memory.budget_bytes) collect_results(bytes);
  R_allocator_t allocator{map_result, unmap_result, nullptr,
                          pages == lcnn::PageSize::base ? &base_pages : &large_pages};
  SEXP result = PROTECT(Rf_allocVector3(type, n, &allocator));
  lcnn::watch_collections();
  UNPROTECT(1);
  return result;
}

}  // namespace

Rcpp::NumericVector lcnn::result_vector(R_xlen_t n, PageSize pages) {
  return pooled_vector(REALSXP, n, static_cast<std::size_t>(n) * sizeof(double), pages);
}

Rcpp::RawVector lcnn::result_bytes(R_xlen_t n, PageSize pages) {
  return pooled_vector(RAWSXP, n, static_cast<std::size_t>(n), pages);
}

// What the counts above hold, for the tests: whether results are mapped
// here at all, bytes not yet freed, bytes pooled, the budget, how many
// collections lcnn has run, and how many blocks came from the pool.
// [[Rcpp::export(.result_memory)]]
Rcpp::NumericVector result_memory() {
  return Rcpp::NumericVector::create(
      Rcpp::Named("mapped") = lcnn::maps_blocks() ? 1.0 : 0.0,
      Rcpp::Named("unfreed_bytes") = static_cast<double>(memory.unfreed_bytes),
      Rcpp::Named("pooled_bytes") = static_cast<double>(memory.pooled_bytes),
      Rcpp::Named("budget_bytes") = static_cast<double>(memory.budget_bytes),
      Rcpp::Named("collections") = memory.collections,
      Rcpp::Named("reuses") = memory.reuses);
}

// Installed as the package loads (R_init_lcnn() calls it; `dll` unused).
// [[Rcpp::init]]
void use_pool_for_trainer_blocks(DllInfo* dll) {
  lcnn::use_block_memory({take_trainer_block, give_back_trainer_block});
}
