// predict()'s results of at least a large page each live in a mapping of
// their own (allocVector3() with a custom allocator) rather than in R's
// heap. From R's heap a loop of predict() calls pays twice for every
// result of tens of MB (bench/NOTES.md, W1: 7.2 against 4.4 ms a call):
// R's collector runs for nearly every one, because R's vector heap grows
// little while what it frees is garbage, and glibc trims its heap when the
// collector frees two results, so that the next ones fault their pages in
// afresh. A mapping of its own is 2 MiB-aligned with huge pages asked for
// (map_large()) and goes back to the kernel when R frees the vector.
//
// R does not count such vectors in its heap, so it would not collect them
// on their account: lcnn counts the bytes of its results that R has not
// freed yet, and runs R's collector (collect_results()) before a result
// would take that count past a budget, twice what was left after its last
// collection and at least kMinBudgetBytes. R's collector also frees them
// whenever it runs for its own reasons.
#include "rcpp_result_memory.h"

#include <R_ext/Rallocators.h>

#include <algorithm>
#include <cstddef>

#include "engine/buffer.hpp"

namespace {

constexpr std::size_t kMinBudgetBytes = std::size_t(256) << 20;
// The block's size, kept in front of what R is given, for unmap_large().
// 16 bytes, so that R's vector header stays as aligned as malloc()'s.
constexpr std::size_t kSizeBytes = 16;

struct ResultMemory {
  std::size_t unfreed_bytes = 0;
  std::size_t budget_bytes = kMinBudgetBytes;
  double collections = 0;
};

ResultMemory memory;

void* map_result(R_allocator_t*, std::size_t bytes) {
  const std::size_t block = bytes + kSizeBytes;
  void* p = lcnn::map_large(block);
  if (p == nullptr) return nullptr;
  *static_cast<std::size_t*>(p) = block;
  memory.unfreed_bytes += block;
  return static_cast<char*>(p) + kSizeBytes;
}

void unmap_result(R_allocator_t*, void* data) {
  void* p = static_cast<char*>(data) - kSizeBytes;
  const std::size_t block = *static_cast<std::size_t*>(p);
  memory.unfreed_bytes -= block;
  lcnn::unmap_large(p, block);
}

// R's collector, of the youngest generation first (`gc(full = FALSE)`):
// that frees the results no collection has yet found alive, most of them
// in a loop of predict() calls, at a fraction of a full collection's cost.
// A result alive at a collection is promoted to an older generation, which
// only a fuller collection frees, so a full one follows when the young one
// leaves the count above half the budget (bench/NOTES.md: a loop's
// collections 43% shorter than with full ones only).
void collect_results(std::size_t bytes) {
  SEXP call =
      PROTECT(Rf_lang3(Rf_install("gc"), Rf_ScalarLogical(FALSE), Rf_ScalarLogical(FALSE)));
  SET_TAG(CDR(call), Rf_install("verbose"));
  SET_TAG(CDDR(call), Rf_install("full"));
  Rf_eval(call, R_BaseEnv);
  UNPROTECT(1);
  if (memory.unfreed_bytes + bytes > memory.budget_bytes / 2) R_gc();
  memory.collections += 1;
  memory.budget_bytes = std::max(kMinBudgetBytes, 2 * memory.unfreed_bytes);
}

}  // namespace

Rcpp::NumericVector lcnn::result_vector(R_xlen_t n) {
  const std::size_t bytes = static_cast<std::size_t>(n) * sizeof(double);
  if (bytes < kLargePageBytes || !maps_large()) {
    return Rcpp::NumericVector(Rcpp::no_init(n));
  }
  if (memory.unfreed_bytes + bytes > memory.budget_bytes) collect_results(bytes);
  R_allocator_t allocator{map_result, unmap_result, nullptr, nullptr};
  return Rcpp::NumericVector(Rf_allocVector3(REALSXP, n, &allocator));
}

// What the count above holds, for the tests: whether results are mapped
// here at all, bytes not yet freed, the budget, and how many collections
// lcnn has run.
// [[Rcpp::export(.result_memory)]]
Rcpp::NumericVector result_memory() {
  return Rcpp::NumericVector::create(
      Rcpp::Named("mapped") = lcnn::maps_large() ? 1.0 : 0.0,
      Rcpp::Named("unfreed_bytes") = static_cast<double>(memory.unfreed_bytes),
      Rcpp::Named("budget_bytes") = static_cast<double>(memory.budget_bytes),
      Rcpp::Named("collections") = memory.collections);
}
