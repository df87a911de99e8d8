#!/usr/bin/env Rscript
# Forward-pass benchmark of lcnn on the DESIGN.md section 3 workloads (W1-W6),
# with the machine's floor (peak float32 GEMM and streaming read bandwidth)
# measured by bench/floor.cpp in the same run. Writes bench/RESULTS.md.
#
# Run from the repository root:  Rscript bench/forward.R
# Settings (environment variables, all optional):
#   LCNN_BENCH_THREADS    threads for lcnn and the floor (default: all cores)
#   LCNN_BENCH_WORKLOADS  comma-separated subset, e.g. "W1,W5" (default: all)
#   LCNN_BENCH_MIN_TIME   seconds of timed repeats per workload (default 2)
#   LCNN_BENCH_MIN_REPS   minimum timed repeats (default 5)
#   LCNN_BENCH_MAX_REPS   maximum timed repeats (default 200)
#   LCNN_BENCH_OUT        output markdown file (default bench/RESULTS.md)
#   CXX                   C++ compiler for floor.cpp (default g++)

suppressPackageStartupMessages(library(lcnn))
# Read now: the package may be reinstalled by someone else while this runs.
lcnn_version <- as.character(getNamespaceVersion("lcnn"))

env_num <- function(name, default) {
  v <- Sys.getenv(name, "")
  if (nzchar(v)) as.numeric(v) else default
}

# --- locations ---------------------------------------------------------------
script_path <- local({
  file_arg <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(file_arg)) normalizePath(sub("^--file=", "", file_arg[1])) else
    normalizePath("bench/forward.R", mustWork = FALSE)
})
bench_dir <- dirname(script_path)
repo_dir <- dirname(bench_dir)
out_dir <- file.path(bench_dir, "out")
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
results_file <- Sys.getenv("LCNN_BENCH_OUT", file.path(bench_dir, "RESULTS.md"))

threads <- as.integer(env_num("LCNN_BENCH_THREADS", parallel::detectCores()))
min_time <- env_num("LCNN_BENCH_MIN_TIME", 2)
min_reps <- as.integer(env_num("LCNN_BENCH_MIN_REPS", 5))
max_reps <- as.integer(env_num("LCNN_BENCH_MAX_REPS", 200))
options(lcnn.num_threads = threads)
batch <- 64L
run_start <- Sys.time()

# --- (a) the floor: build and run floor.cpp ----------------------------------
# The floor build: the best flags the machine allows. With portable = TRUE, a
# second build with the optimisation level of R's default flags and no -march
# (what Eigen gets inside the installed package), for comparison only.
build_floor <- function(portable = FALSE) {
  src <- file.path(bench_dir, "floor.cpp")
  exe <- file.path(out_dir, if (portable) "floor-portable" else "floor")
  cxx <- Sys.getenv("CXX", "g++")
  eigen <- system.file("include", package = "RcppEigen")
  if (!nzchar(eigen)) stop("RcppEigen is not installed: it provides the Eigen headers.")
  opt <- if (portable) "-O2" else c("-O3", "-march=native")
  flags <- c("-std=c++17", opt, "-fopenmp", "-DEIGEN_DONT_PARALLELIZE",
             "-Wno-ignored-attributes", paste0("-I", shQuote(eigen)))
  cmd <- paste(cxx, paste(flags, collapse = " "), shQuote(src), "-o", shQuote(exe))
  if (!file.exists(exe) || file.mtime(exe) < file.mtime(src)) {
    message("compiling floor.cpp: ", cmd)
    log <- file.path(out_dir, paste0(basename(exe), "-build.log"))
    status <- system(paste(cmd, ">", shQuote(log), "2>&1"))
    if (status != 0) stop("floor.cpp failed to compile; see ", log)
  }
  list(exe = exe, cmd = cmd)
}

run_floor <- function(exe, threads, ...) {
  lines <- system2(exe, c(as.character(threads), ...), stdout = TRUE)
  kv <- strsplit(lines, " ", fixed = TRUE)
  vals <- vapply(kv, function(p) paste(p[-1], collapse = " "), character(1))
  names(vals) <- vapply(kv, `[`, character(1), 1)
  vals
}

loadavg <- function() {
  l <- tryCatch(readLines("/proc/loadavg", n = 1), error = function(e) "")
  paste(strsplit(l, " ")[[1]][1:3], collapse = " ")
}
load_start <- loadavg()
floor_build <- build_floor()
message("measuring the floor with ", threads, " thread(s)")
floor_vals <- run_floor(floor_build$exe, threads)
peak_gflops <- as.numeric(floor_vals[["gemm_peak_gflops"]])
bandwidth_gbs <- as.numeric(floor_vals[["read_bandwidth_gbs"]])
message(sprintf("  peak GEMM %.1f GFLOP/s, read bandwidth %.1f GB/s",
                peak_gflops, bandwidth_gbs))

# --- (b) workloads -------------------------------------------------------------
workloads <- list(
  list(id = "W1", rank = 2L, input = c(32L, 32L, 3L), filters = 64L, kernel = c(3L, 3L),
       padding = "valid", desc = "2D 32×32×3 → 64 filters 3×3 valid"),
  list(id = "W2", rank = 2L, input = c(30L, 30L, 64L), filters = 32L, kernel = c(3L, 3L),
       padding = "valid", desc = "2D 30×30×64 → 32 filters 3×3 valid"),
  list(id = "W3", rank = 2L, input = c(25L, 25L, 16L), filters = 16L, kernel = c(5L, 5L),
       padding = "valid", desc = "2D 25×25×16 → 16 filters 5×5 valid"),
  list(id = "W4", rank = 2L, input = c(63L, 63L, 16L), filters = 16L, kernel = c(9L, 9L),
       padding = "valid", desc = "2D 63×63×16 → 16 filters 9×9 valid"),
  list(id = "W5", rank = 1L, input = c(50000L, 1L), filters = 1L, kernel = 5L,
       padding = "valid", desc = "1D 50,000×1 → 1 filter k=5 valid"),
  list(id = "W6", rank = 2L, input = c(7L, 7L, 1024L), filters = 256L, kernel = c(3L, 3L),
       padding = "same", desc = "2D 7×7×1024 → 256 filters 3×3 same")
)
only <- Sys.getenv("LCNN_BENCH_WORKLOADS", "")
if (nzchar(only)) {
  keep <- trimws(strsplit(only, ",")[[1]])
  workloads <- Filter(function(w) w$id %in% keep, workloads)
}

now <- function() as.numeric(Sys.time())  # microsecond resolution

# Output positions P, patch size K·C, for the shape-only floor.
geometry <- function(w) {
  spatial <- w$input[seq_len(w$rank)]
  channels <- w$input[w$rank + 1L]
  out <- if (w$padding == "valid") spatial - w$kernel + 1L else spatial
  list(P = prod(out), KC = prod(w$kernel) * channels, out = out,
       in_elems = prod(w$input), out_elems = prod(out) * w$filters)
}

make_model <- function(w) {
  model <- keras_model_sequential(input_shape = w$input, dtype = "float32")
  if (w$rank == 2L) {
    model %>% layer_locally_connected_2d(filters = w$filters, kernel_size = w$kernel,
                                         padding = w$padding)
  } else {
    model %>% layer_locally_connected_1d(filters = w$filters, kernel_size = w$kernel,
                                         padding = w$padding)
  }
  model
}

bench_workload <- function(w) {
  g <- geometry(w)
  set.seed(1)
  x <- array(runif(batch * prod(w$input), -1, 1), dim = c(batch, w$input))
  invisible(gc(verbose = FALSE))

  # Time to first output: layer creation (weights initialised) + first predict.
  t0 <- now()
  model <- make_model(w)
  t1 <- now()
  y <- predict(model, x, batch_size = batch)
  t2 <- now()
  stopifnot(identical(as.integer(dim(y)), as.integer(c(batch, g$out, w$filters))),
            all(is.finite(y)))
  params <- count_params(model)
  rm(y)

  # Warm-up, then timed repeats until both min_reps and min_time are reached.
  invisible(predict(model, x, batch_size = batch))
  times <- numeric(0)
  started <- now()
  while (length(times) < max_reps &&
         (length(times) < min_reps || now() - started < min_time)) {
    s <- now()
    invisible(predict(model, x, batch_size = batch))
    times <- c(times, now() - s)
  }

  med <- stats::median(times)
  rm(model, x)
  invisible(gc(verbose = FALSE))
  data.frame(
    id = w$id, desc = w$desc, params = params, P = g$P, KC = g$KC, F = w$filters,
    time_ms = med * 1e3, min_ms = min(times) * 1e3, reps = length(times),
    flops = 2 * batch * g$P * g$KC * w$filters,
    bytes = 4 * (g$P * g$KC * w$filters + batch * g$in_elems + batch * g$out_elems),
    create_s = t1 - t0, ttfo_s = t2 - t0,
    stringsAsFactors = FALSE
  )
}

rows <- list()
for (w in workloads) {
  message("running ", w$id, ": ", w$desc)
  r <- bench_workload(w)
  message(sprintf("  %.2f ms (median of %d), first output %.2f s",
                  r$time_ms, r$reps, r$ttfo_s))
  rows[[length(rows) + 1L]] <- r
}
res <- do.call(rbind, rows)

# The floor again after the workloads (the machine may have been busier at the
# start); each ceiling is the best of the two measurements.
message("measuring the floor again")
floor_vals2 <- run_floor(floor_build$exe, threads)
load_end <- loadavg()
peak_runs <- c(peak_gflops, as.numeric(floor_vals2[["gemm_peak_gflops"]]))
bw_runs <- c(bandwidth_gbs, as.numeric(floor_vals2[["read_bandwidth_gbs"]]))
peak_gflops <- max(peak_runs)
bandwidth_gbs <- max(bw_runs)
if (peak_runs[2] > peak_runs[1]) floor_vals <- floor_vals2
portable_build <- build_floor(portable = TRUE)
portable_vals <- run_floor(portable_build$exe, threads, 1024, "gemm")
portable_gflops <- as.numeric(portable_vals[["gemm_peak_gflops"]])
message(sprintf("  peak GEMM %.1f GFLOP/s, read bandwidth %.1f GB/s; portable-build GEMM %.1f GFLOP/s",
                peak_gflops, bandwidth_gbs, portable_gflops))

compute_s <- res$flops / (peak_gflops * 1e9)
memory_s <- res$bytes / (bandwidth_gbs * 1e9)
floor_s <- pmax(compute_s, memory_s)
res$gflops <- res$flops / res$time_ms / 1e6
res$floor_ms <- floor_s * 1e3
res$bound <- ifelse(compute_s >= memory_s, "compute", "memory")
res$ratio <- res$time_ms / res$floor_ms
for (i in seq_len(nrow(res))) {
  message(sprintf("%s: %.2f ms, floor %.2f ms (%s), ratio %.1f×", res$id[i], res$time_ms[i],
                  res$floor_ms[i], res$bound[i], res$ratio[i]))
}

# --- (d) RESULTS.md ------------------------------------------------------------
cpu_model <- local({
  info <- tryCatch(readLines("/proc/cpuinfo"), error = function(e) character(0))
  m <- grep("^model name", info, value = TRUE)
  if (length(m)) trimws(sub("^[^:]*:", "", m[1])) else Sys.info()[["machine"]]
})
git <- function(...) {
  out <- tryCatch(suppressWarnings(system2("git", c("-C", shQuote(repo_dir), ...),
                                           stdout = TRUE, stderr = FALSE)),
                  error = function(e) character(0))
  if (length(out)) out[1] else "unknown"
}
commit <- git("rev-parse", "--short", "HEAD")
dirty <- git("status", "--porcelain", "--untracked-files=no")
commit_desc <- if (!identical(dirty, "unknown") && nzchar(dirty)) {
  paste0(commit, " (+ uncommitted changes)")
} else commit
r_cxxflags <- tryCatch(system2(file.path(R.home("bin"), "R"), c("CMD", "config", "CXX17FLAGS"),
                               stdout = TRUE, stderr = FALSE)[1],
                       error = function(e) "unknown")

fmt <- function(x, digits) formatC(x, format = "f", digits = digits, big.mark = ",")
fmt_ms <- function(x) ifelse(x >= 100, fmt(x, 0), ifelse(x >= 10, fmt(x, 1), fmt(x, 2)))

header <- c(
  "| id | layer (batch 64, float32) | params | lcnn forward (ms) | GFLOP/s | floor (ms) | bound | ratio to floor | first output (s) |",
  "|---|---|---:|---:|---:|---:|---|---:|---:|"
)
body <- sprintf("| %s | %s | %s | %s | %s | %s | %s | %s× | %s (create %s) |",
                res$id, res$desc, fmt(res$params, 0), fmt_ms(res$time_ms),
                fmt(res$gflops, 1), fmt_ms(res$floor_ms), res$bound, fmt(res$ratio, 1),
                fmt(res$ttfo_s, 2), fmt(res$create_s, 2))
if (!nzchar(only) || "W7" %in% trimws(strsplit(only, ",")[[1]])) {
  body <- c(body, "| W7 | full small model, one epoch of Fashion-MNIST (training) | – | needs the trainer | – | – | – | – | – |")
}

detail <- c(
  "| id | P | K·C | F | flops (G) | bytes (MB) | median (ms) | min (ms) | repeats |",
  "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  sprintf("| %s | %s | %s | %s | %s | %s | %s | %s | %d |", res$id, fmt(res$P, 0),
          fmt(res$KC, 0), fmt(res$F, 0), fmt(res$flops / 1e9, 3), fmt(res$bytes / 1e6, 1),
          fmt_ms(res$time_ms), fmt_ms(res$min_ms), res$reps)
)

geo <- if (nrow(res)) exp(mean(log(res$ratio))) else NA
floor_detail <- grep("^gemm_gflops_n", names(floor_vals), value = TRUE)
md <- c(
  "# lcnn forward-pass benchmark",
  "",
  sprintf("Generated by `Rscript bench/forward.R` on %s (run took %.0f s). See bench/README.md for the columns and the floor.",
          format(Sys.time(), "%Y-%m-%d %H:%M %Z"),
          as.numeric(difftime(Sys.time(), run_start, units = "secs"))),
  "",
  "## Machine",
  "",
  sprintf("- CPU: %s, %d cores (%d logical CPUs); threads used: %d",
          cpu_model, parallel::detectCores(logical = FALSE), parallel::detectCores(), threads),
  sprintf("- Floor, measured in this run with %d threads by bench/floor.cpp (`%s`):",
          threads, sub(" -o .*$", "", sub("-I\\S+", "-I<RcppEigen>", floor_build$cmd))),
  "  (run before and after the workloads; each ceiling is the better of the two)",
  sprintf("  - peak float32 GEMM: **%.1f GFLOP/s** (runs: %s; Eigen, one independent n×n product per thread; per size in the best run: %s)",
          peak_gflops, paste(fmt(peak_runs, 1), collapse = ", "),
          paste(sprintf("n=%s %s", sub("gemm_gflops_n", "", floor_detail), floor_vals[floor_detail]),
                collapse = ", ")),
  sprintf("  - streaming read bandwidth: **%.1f GB/s** (runs: %s; sum over a %s MiB float array)",
          bandwidth_gbs, paste(fmt(bw_runs, 1), collapse = ", "), floor_vals[["read_array_mib"]]),
  sprintf("  - Eigen SIMD in the floor build: %s", floor_vals[["simd"]]),
  sprintf("  - for comparison, not used in the floor: the same GEMM test built with `-O2` and no `-march` (R's default optimisation, Eigen SIMD: %s) reaches %.1f GFLOP/s (%.0f%% of the peak)",
          portable_vals[["simd"]], portable_gflops, 100 * portable_gflops / peak_gflops),
  sprintf("- %s; lcnn %s built with R's flags (`CXX17FLAGS = %s`)",
          R.version.string, lcnn_version, r_cxxflags),
  sprintf("- load average (1, 5, 15 min) at start: %s; at end: %s (other processes share this machine)",
          load_start, load_end),
  sprintf("- lcnn git commit: %s", commit_desc),
  sprintf("- date: %s", format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z")),
  "",
  "## Forward pass (`predict(model, x, batch_size = 64)`)",
  "",
  header, body,
  "",
  sprintf("Geometric mean of the ratio to floor over %s: %s×. Target (DESIGN.md §3): ≤ 1.5× on every workload.",
          paste(res$id, collapse = ", "), fmt(geo, 1)),
  "",
  "floor = max(flops / peak GEMM, bytes / read bandwidth), flops = 2·B·P·K·C·F,",
  "bytes = 4·(P·K·C·F + B·input + B·output); \"bound\" says which term is larger.",
  "",
  "### Details",
  "",
  detail,
  ""
)
writeLines(md, results_file)
message("wrote ", results_file, sprintf(" (%.0f s in all)",
                                         as.numeric(difftime(Sys.time(), run_start, units = "secs"))))
