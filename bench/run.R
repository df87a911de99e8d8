#!/usr/bin/env Rscript
# The lcnn benchmark suite (DESIGN.md section 3): workloads W1-W7, the
# machine's floor measured by bench/floor.cpp in the same run, and the peers
# (tf-keras, PyTorch, JAX through bench/peers/peers.py) with the same thread
# count. Writes bench/RESULTS.md; bench/README.md says what each number is.
#
# Run from the repository root:  Rscript bench/run.R   (or: make bench)
# Settings (environment variables, all optional):
#   LCNN_BENCH_QUICK      1: a smoke run (batch 8, few repeats, short limits,
#                         W7 on 6,000 images); its numbers are not for comparison
#   LCNN_BENCH_THREADS    threads for lcnn, the floor and every peer (default: all cores)
#   LCNN_BENCH_WORKLOADS  comma-separated subset, e.g. "W1,W5" (default: all)
#   LCNN_BENCH_PEERS      comma-separated subset of tf1,tf2,tf3,torch,jax, or "none"
#   LCNN_BENCH_MIN_TIME   seconds of timed repeats per measure (default 2)
#   LCNN_BENCH_MIN_REPS   minimum timed repeats (default 5)
#   LCNN_BENCH_MAX_REPS   maximum timed repeats (default 200)
#   LCNN_BENCH_FRESH_RUNS fresh processes for lcnn's first output and memory (default 3)
#   LCNN_BENCH_PEER_TIME_LIMIT   seconds per peer measure (default 120)
#   LCNN_BENCH_PEER_MEMORY_GB    estimated memory above which a peer measure is skipped (default 6)
#   LCNN_PEERS_VENV       the peers' Python environment (default bench/peers/.venv)
#   LCNN_BENCH_OUT        output markdown file (default bench/RESULTS.md)
#   LCNN_BENCH_NATIVE     0: skip the -march=native build of lcnn that the
#                         installed (portable) build is compared with (default 1;
#                         0 in a quick run)
#   LCNN_BENCH_TUNED_MALLOC 0: skip timing the installed build again with glibc
#                         keeping freed memory (default 1; 0 in a quick run)
#   CXX                   C++ compiler for floor.cpp (default g++)
#
# Internally, `Rscript bench/run.R --fresh ID` is one fresh process measuring
# lcnn's time to first output and the peak memory of a training step, and
# `Rscript bench/run.R --times ID` (run with the native build's library, or
# with glibc tuned) prints the forward and training-step medians of one
# workload.

suppressPackageStartupMessages(library(lcnn))

`%||%` <- function(a, b) if (is.null(a)) b else a

env_num <- function(name, default) {
  v <- Sys.getenv(name, "")
  if (nzchar(v)) as.numeric(v) else default
}

quick <- identical(Sys.getenv("LCNN_BENCH_QUICK"), "1")
settings <- list(
  quick = quick,
  batch = if (quick) 8L else 64L,
  threads = as.integer(env_num("LCNN_BENCH_THREADS", parallel::detectCores())),
  min_time = env_num("LCNN_BENCH_MIN_TIME", if (quick) 0.2 else 2),
  min_reps = as.integer(env_num("LCNN_BENCH_MIN_REPS", if (quick) 2 else 5)),
  max_reps = as.integer(env_num("LCNN_BENCH_MAX_REPS", if (quick) 5 else 200)),
  fresh_runs = as.integer(env_num("LCNN_BENCH_FRESH_RUNS", if (quick) 1 else 3)),
  peer_time_limit = env_num("LCNN_BENCH_PEER_TIME_LIMIT", if (quick) 30 else 120),
  peer_memory_gb = env_num("LCNN_BENCH_PEER_MEMORY_GB", 6),
  # W7: the training images of one epoch (all 60,000 in a full run).
  epoch_samples = if (quick) 6000L else 60000L,
  epoch_reps = if (quick) 1L else 3L,
  native = env_num("LCNN_BENCH_NATIVE", if (quick) 0 else 1) == 1,
  tuned_malloc = env_num("LCNN_BENCH_TUNED_MALLOC", if (quick) 0 else 1) == 1
)
options(lcnn.num_threads = settings$threads)
learning_rate <- 0.01  # plain SGD, as every peer

# --- locations ---------------------------------------------------------------
script_path <- local({
  file_arg <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(file_arg)) normalizePath(sub("^--file=", "", file_arg[1])) else
    normalizePath("bench/run.R", mustWork = FALSE)
})
bench_dir <- dirname(script_path)
repo_dir <- dirname(bench_dir)
out_dir <- file.path(bench_dir, "out")

# --- workloads (DESIGN.md section 3) -------------------------------------------
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
names(workloads) <- vapply(workloads, `[[`, character(1), "id")
w7_desc <- "the demo model (tools/demo.R), one epoch of Fashion-MNIST"

# Output positions P, patch size K·C and the flops and bytes of the floor
# (strides are 1 in every workload).
geometry <- function(w, batch) {
  spatial <- w$input[seq_len(w$rank)]
  channels <- w$input[w$rank + 1L]
  out <- if (w$padding == "valid") spatial - w$kernel + 1L else spatial
  P <- prod(out)
  KC <- prod(w$kernel) * channels
  list(P = P, KC = KC, F = w$filters, out = out,
       in_elems = prod(w$input), out_elems = P * w$filters,
       params = P * KC * w$filters + P * w$filters,
       flops = 2 * batch * P * KC * w$filters,
       bytes = 4 * (P * KC * w$filters + batch * prod(w$input) + batch * P * w$filters))
}

make_model <- function(w) {
  model <- keras_model_sequential(input_shape = w$input, dtype = "float32")
  layer <- if (w$rank == 2L) layer_locally_connected_2d else layer_locally_connected_1d
  layer(model, filters = w$filters, kernel_size = w$kernel, padding = w$padding)
}

# The convolution with the same shapes (DESIGN.md §3 compares the two).
make_conv_model <- function(w) {
  model <- keras_model_sequential(input_shape = w$input, dtype = "float32")
  layer <- if (w$rank == 2L) layer_conv_2d else layer_conv_1d
  layer(model, filters = w$filters, kernel_size = w$kernel, padding = w$padding)
}

random_data <- function(w, batch) {
  g <- geometry(w, batch)
  list(x = array(stats::runif(batch * g$in_elems, -1, 1), dim = c(batch, w$input)),
       y = array(stats::rnorm(batch * g$out_elems), dim = c(batch, g$out, w$filters)))
}

now <- function() as.numeric(Sys.time())  # microsecond resolution

# Seconds of each timed call, after `warmup` untimed ones; repeats until both
# min_reps calls and min_time seconds are reached (as bench/peers/peers.py).
repeat_timed <- function(fn, warmup = 1L) {
  for (i in seq_len(warmup)) fn()
  times <- numeric(0)
  started <- now()
  while (length(times) < settings$max_reps &&
         (length(times) < settings$min_reps || now() - started < settings$min_time)) {
    s <- now()
    fn()
    times <- c(times, now() - s)
  }
  times
}

# One training step as fit() runs it, without fit()'s per-epoch R work: the
# engine's epoch loop over exactly one batch (gather the batch into float32,
# forward, mean squared error, backward, SGD update). The internal calls are
# those of fit() and tests/testthat/helper-training.R.
training_step <- function(model, data, batch) {
  model %>% compile(optimizer = optimizer_sgd(learning_rate = learning_rate), loss = "mse")
  plans <- lcnn:::plan_model(model, data$x, NULL)
  d <- lcnn:::training_data(model, plans, data$x, data$y, NULL, NULL)
  lcnn:::commit_model(model, plans)
  trainer <- lcnn:::model_trainer(model, d)
  order <- seq_len(batch) - 1
  keep_going <- function(batch, scores) TRUE
  function() {
    lcnn:::.trainer_fit_epoch(trainer, d$x, d$y, d$weights, d$n, order, batch, c(1, 2),
                              settings$threads, keep_going, 1L)
  }
}

proc_status_kib <- function(field) {
  s <- readLines("/proc/self/status")
  as.numeric(sub("^[^:]*:\\s*(\\d+).*$", "\\1", grep(paste0("^", field, ":"), s, value = TRUE)))
}

# The forward and training-step medians of workload `id` with the lcnn that
# this process loaded; run.R calls it with the native build's library.
times_process <- function(id) {
  w <- workloads[[id]]
  set.seed(1)
  data <- random_data(w, settings$batch)
  model <- make_model(w)
  forward <- repeat_timed(function() predict(model, data$x, batch_size = settings$batch))
  train <- repeat_timed(training_step(model, data, settings$batch), warmup = 2L)
  cat(sprintf("forward_s %.6f\ntrain_s %.6f\n", stats::median(forward), stats::median(train)))
}

# --- a fresh process: first output and peak memory of a training step ----------
# Prints "key value" lines. Time to first output starts after library(lcnn)
# and the input data, as for the peers after their imports.
fresh_process <- function(id) {
  w <- workloads[[id]]
  batch <- settings$batch
  set.seed(1)
  data <- random_data(w, batch)
  t0 <- now()
  model <- make_model(w)
  t1 <- now()
  invisible(predict(model, data$x, batch_size = batch))
  t2 <- now()
  step <- training_step(model, data, batch)
  invisible(gc(verbose = FALSE))
  before <- proc_status_kib("VmRSS")
  # Writing 5 to clear_refs resets the high-water mark to the current size
  # (Linux 4.0+), so earlier peaks (weight initialisation) do not count.
  peak_known <- tryCatch({
    writeLines("5", "/proc/self/clear_refs")
    TRUE
  }, error = function(e) FALSE, warning = function(cond) FALSE)
  for (i in 1:3) step()
  peak <- proc_status_kib("VmHWM")
  cat(sprintf("create_s %.6f\nfirst_output_s %.6f\npeak_extra_mb %s\n", t1 - t0, t2 - t0,
              if (peak_known) sprintf("%.1f", (peak - before) / 1024) else "NA"))
}

args <- commandArgs(TRUE)
if (length(args) == 2 && args[1] == "--fresh") {
  fresh_process(args[2])
  quit(save = "no")
}
if (length(args) == 2 && args[1] == "--times") {
  times_process(args[2])
  quit(save = "no")
}

# =============================================================================
# The suite.
# =============================================================================
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
results_file <- Sys.getenv("LCNN_BENCH_OUT", file.path(bench_dir, "RESULTS.md"))
# Read now: the package may be reinstalled by someone else while this runs.
lcnn_version <- as.character(getNamespaceVersion("lcnn"))
lcnn_library <- dirname(getNamespaceInfo("lcnn", "path"))
run_start <- now()
threads <- settings$threads
batch <- settings$batch

only <- trimws(strsplit(Sys.getenv("LCNN_BENCH_WORKLOADS", ""), ",")[[1]])
selected <- if (length(only)) intersect(c(names(workloads), "W7"), only) else
  c(names(workloads), "W7")
layer_ids <- intersect(selected, names(workloads))

loadavg <- function() {
  l <- tryCatch(readLines("/proc/loadavg", n = 1), error = function(e) "")
  paste(strsplit(l, " ")[[1]][1:3], collapse = " ")
}
load_start <- loadavg()

# Whether other work shared the machine: CPU time the whole machine spent busy
# (/proc/stat) less this run's own (R and the processes it waited for).
machine_busy_s <- function() {
  ticks <- as.numeric(strsplit(readLines("/proc/stat", n = 1), " +")[[1]][-1])
  # user nice system idle iowait irq softirq steal
  (sum(ticks[1:8]) - ticks[4] - ticks[5]) / clock_ticks
}
own_cpu_s <- function() {
  t <- proc.time()
  sum(t[c("user.self", "sys.self", "user.child", "sys.child")], na.rm = TRUE)
}
clock_ticks <- as.numeric(system2("getconf", "CLK_TCK", stdout = TRUE))
busy_start <- machine_busy_s()
own_start <- own_cpu_s()

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

run_floor <- function(exe, ...) {
  lines <- system2(exe, c(as.character(threads), ...), stdout = TRUE)
  kv <- strsplit(lines, " ", fixed = TRUE)
  vals <- vapply(kv, function(p) paste(p[-1], collapse = " "), character(1))
  names(vals) <- vapply(kv, `[`, character(1), 1)
  vals
}

floor_build <- build_floor()
message("measuring the floor with ", threads, " thread(s)")
floor_runs <- list(run_floor(floor_build$exe))

# --- (b) lcnn on W1-W6 ----------------------------------------------------------
run_fresh <- function(id) {
  rscript <- file.path(R.home("bin"), "Rscript")
  lines <- system2(rscript, c(shQuote(script_path), "--fresh", id), stdout = TRUE)
  kv <- strsplit(grep("^[a-z_]+ ", lines, value = TRUE), " ", fixed = TRUE)
  stats::setNames(as.numeric(vapply(kv, `[`, character(1), 2)),
                  vapply(kv, `[`, character(1), 1))
}

bench_lcnn <- function(w) {
  g <- geometry(w, batch)
  set.seed(1)
  data <- random_data(w, batch)
  model <- make_model(w)
  y <- predict(model, data$x, batch_size = batch)
  stopifnot(identical(as.integer(dim(y)), as.integer(c(batch, g$out, w$filters))),
            all(is.finite(y)))
  forward <- repeat_timed(function() predict(model, data$x, batch_size = batch))
  engine_forward <- lcnn:::.network_forward_seconds(lcnn:::model_network(model), batch,
                                                    length(forward), settings$threads)
  step <- training_step(model, data, batch)
  train <- repeat_timed(step, warmup = 2L)
  conv_train <- repeat_timed(training_step(make_conv_model(w), data, batch), warmup = 2L)
  rm(model, data, step)
  invisible(gc(verbose = FALSE))
  fresh <- do.call(rbind, lapply(seq_len(settings$fresh_runs), function(i) run_fresh(w$id)))
  data.frame(
    id = w$id, forward_s = stats::median(forward), forward_min_s = min(forward),
    forward_reps = length(forward), engine_forward_s = stats::median(engine_forward),
    train_s = stats::median(train),
    train_min_s = min(train), train_reps = length(train),
    conv_train_s = stats::median(conv_train),
    create_s = stats::median(fresh[, "create_s"]),
    first_output_s = stats::median(fresh[, "first_output_s"]),
    peak_extra_mb = stats::median(fresh[, "peak_extra_mb"]),
    fresh_runs = nrow(fresh), stringsAsFactors = FALSE
  )
}

# --- (c) the peers ---------------------------------------------------------------
peers_venv <- Sys.getenv("LCNN_PEERS_VENV", file.path(bench_dir, "peers", ".venv"))
peers_python <- file.path(peers_venv, "bin", "python")
peers_wanted <- Sys.getenv("LCNN_BENCH_PEERS", "tf1,tf2,tf3,torch,jax")
peer_labels <- c(tf1 = "tf-keras 1", tf2 = "tf-keras 2", tf3 = "tf-keras 3",
                 torch = "PyTorch", jax = "JAX")
peers_note <- if (identical(peers_wanted, "none")) {
  "peers not run (LCNN_BENCH_PEERS=none)"
} else if (!file.exists(peers_python)) {
  "peers not installed: run bench/peers/setup.sh"
}
peer_ids <- if (is.null(peers_note)) trimws(strsplit(peers_wanted, ",")[[1]]) else character(0)
peers_script <- shQuote(file.path(bench_dir, "peers", "peers.py"))
# peers.py in the peers' environment. R puts its own library folders (with
# the system's libpython among them) on LD_LIBRARY_PATH, where a Python built
# with a shared libpython would load that one instead of its own.
run_peers_py <- function(args, ...) {
  system2("env", c("-u", "LD_LIBRARY_PATH", shQuote(peers_python), peers_script, args), ...)
}
peer_versions <- if (length(peer_ids)) {
  jsonlite::fromJSON(run_peers_py("--versions", stdout = TRUE))
}

bench_peers <- function(w) {
  spec <- list(id = w$id, rank = w$rank, input = I(w$input), filters = w$filters,
               kernel = I(w$kernel), strides = I(rep(1L, w$rank)), padding = w$padding,
               batch = batch)
  log <- file.path(out_dir, paste0("peers-", w$id, ".log"))
  lines <- run_peers_py(c(
    "--workload", shQuote(jsonlite::toJSON(spec, auto_unbox = TRUE)),
    "--threads", threads, "--peers", paste(peer_ids, collapse = ","),
    "--min-time", settings$min_time, "--min-reps", settings$min_reps,
    "--max-reps", settings$max_reps, "--time-limit", settings$peer_time_limit,
    "--memory-limit-gb", settings$peer_memory_gb), stdout = TRUE, stderr = log)
  records <- lapply(grep("^\\{", lines, value = TRUE), jsonlite::fromJSON)
  do.call(rbind, lapply(records, function(r) data.frame(
    id = r$workload, peer = r$peer, measure = r$measure, status = r$status,
    seconds = r$seconds %||% NA_real_, reps = r$reps %||% NA_integer_,
    create_s = r$create_seconds %||% NA_real_,
    peak_extra_mb = r$peak_extra_mb %||% NA_real_,
    reason = r$reason %||% "", stringsAsFactors = FALSE)))
}

lcnn_rows <- list()
peer_rows <- list()
for (id in layer_ids) {
  w <- workloads[[id]]
  message("lcnn ", id, ": ", w$desc)
  r <- bench_lcnn(w)
  message(sprintf("  forward %.2f ms, training step %.2f ms, first output %.2f s, peak extra %.0f MB",
                  1e3 * r$forward_s, 1e3 * r$train_s, r$first_output_s, r$peak_extra_mb))
  lcnn_rows[[id]] <- r
  if (length(peer_ids)) {
    message("peers ", id)
    p <- bench_peers(w)
    for (i in seq_len(nrow(p))) {
      message(sprintf("  %-6s %-12s %s", p$peer[i], p$measure[i],
                      if (p$status[i] == "ok") sprintf("%.4g s", p$seconds[i]) else p$reason[i]))
    }
    peer_rows[[id]] <- p
  }
}
res <- do.call(rbind, lcnn_rows)
peers <- do.call(rbind, peer_rows)

# --- (c2) lcnn built with -march=native, for the portable-build target --------
# The same package installed into bench/out/lib-native with the compiler
# flags of a machine-specific build; each workload's forward and step medians
# come from a fresh process that loads that library.
native_build <- function() {
  lib <- file.path(out_dir, "lib-native")
  dir.create(lib, showWarnings = FALSE)
  makevars <- file.path(out_dir, "native.mk")
  writeLines("CXX17FLAGS = -O3 -march=native", makevars)
  log <- file.path(out_dir, "lib-native-install.log")
  message("installing lcnn built with -O3 -march=native into ", lib)
  status <- system2(file.path(R.home("bin"), "R"),
                    c("CMD", "INSTALL", "--preclean", "--no-multiarch", "-l", shQuote(lib),
                      shQuote(repo_dir)),
                    stdout = log, stderr = log, env = paste0("R_MAKEVARS_USER=", makevars))
  if (status != 0) stop("the native build failed; see ", log)
  lib
}

# The forward and step medians of workload `id` in a fresh process that
# loads lcnn from `lib`, with the extra environment `env`.
process_times <- function(lib, id, env = character()) {
  lines <- system2(file.path(R.home("bin"), "Rscript"), c(shQuote(script_path), "--times", id),
                   stdout = TRUE, env = c(paste0("R_LIBS=", lib), env))
  kv <- strsplit(grep("^[a-z_]+ ", lines, value = TRUE), " ", fixed = TRUE)
  stats::setNames(as.numeric(vapply(kv, `[`, character(1), 2)),
                  vapply(kv, `[`, character(1), 1))
}

native <- NULL
if (settings$native) {
  lib <- native_build()
  native <- do.call(rbind, lapply(layer_ids, function(id) {
    message("lcnn ", id, " (native build)")
    t <- process_times(lib, id)
    data.frame(id = id, forward_s = t[["forward_s"]], train_s = t[["train_s"]])
  }))
}

# --- (c3) glibc's allocator keeping freed memory ------------------------------
# The installed package again, in a fresh process per workload whose glibc
# keeps up to 1 GiB of freed heap instead of returning it to the system.
# predict()'s outputs of 2 MiB or more no longer come from that heap (README.md,
# "Engine and speed"); smaller ones and R's other vectors still do, and fault
# fresh pages in when glibc has trimmed it (bench/NOTES.md).
tuned_malloc_env <- paste0("GLIBC_TUNABLES=glibc.malloc.trim_threshold=1073741824:",
                           "glibc.malloc.mmap_threshold=33554432")
tuned <- NULL
if (settings$tuned_malloc) {
  installed <- dirname(system.file(package = "lcnn"))
  tuned <- do.call(rbind, lapply(layer_ids, function(id) {
    message("lcnn ", id, " (glibc keeping freed memory)")
    t <- process_times(installed, id, tuned_malloc_env)
    data.frame(id = id, forward_s = t[["forward_s"]], train_s = t[["train_s"]])
  }))
}

# --- (d) W7: one epoch of the demo model ------------------------------------------
source(file.path(repo_dir, "tools", "demo_model.R"))
# The demo model's layers with products, per sample: forward flops, weights
# (biases included), and the values each reads in and writes out. The
# locally connected layers as in geometry() (28 → 13 → 6 with 3×3 stride
# 2), then the dense layers.
demo_layers <- function() {
  products <- c(169 * 9 * 16, 36 * 144 * 32, 1152 * 128, 128 * 10)
  data.frame(flops = 2 * products, weights = products + c(169 * 16, 36 * 32, 128, 10),
             inputs = c(28 * 28, 169 * 16, 1152, 128), outputs = c(169 * 16, 1152, 128, 10))
}

w7 <- NULL
if ("W7" %in% selected) {
  n <- settings$epoch_samples
  data <- tryCatch(demo_data(n), error = function(e) conditionMessage(e))
  if (is.character(data)) {
    w7 <- list(note = paste("skipped: Fashion-MNIST is not installed",
                            "(apt-get install dataset-fashion-mnist):", data))
  } else {
    message("lcnn W7: ", w7_desc)
    x <- data$x
    y <- data$y
    rm(data)
    set.seed(2026)
    model <- compiled_demo_model()
    # Warm-up on a few batches: the trainer and its buffers are made once.
    fit(model, x[1:640, , , , drop = FALSE], y[1:640], epochs = 1, batch_size = 64, verbose = 0)
    epochs <- vapply(seq_len(settings$epoch_reps), function(i) {
      s <- now()
      fit(model, x, y, epochs = 1, batch_size = 64, verbose = 0)
      now() - s
    }, numeric(1))
    w7 <- list(samples = n, batch = 64L, seconds = stats::median(epochs), reps = length(epochs),
               steps = ceiling(n / 64), accuracy = evaluate(model, x, y, verbose = 0)$accuracy)
    message(sprintf("  one epoch %.1f s (median of %d)", w7$seconds, w7$reps))
    rm(model, x, y)
  }
}

# The floor again after the workloads (the machine may have been busier at the
# start); each ceiling is the best of the two measurements.
message("measuring the floor again")
floor_runs[[2]] <- run_floor(floor_build$exe)
# Other processes' average use of the cores during the run.
# (at least 0: the two clocks differ by a few ticks)
others_cores <- max(0, ((machine_busy_s() - busy_start) - (own_cpu_s() - own_start)) /
  (now() - run_start))
peak_runs <- vapply(floor_runs, function(v) as.numeric(v[["gemm_peak_gflops"]]), numeric(1))
bw_runs <- vapply(floor_runs, function(v) as.numeric(v[["read_bandwidth_gbs"]]), numeric(1))
peak_gflops <- max(peak_runs)
bandwidth_gbs <- max(bw_runs)
floor_vals <- floor_runs[[which.max(peak_runs)]]
portable_build <- build_floor(portable = TRUE)
portable_vals <- run_floor(portable_build$exe, 1024, "gemm")
portable_gflops <- as.numeric(portable_vals[["gemm_peak_gflops"]])
message(sprintf("  peak GEMM %.1f GFLOP/s, read bandwidth %.1f GB/s; portable-build GEMM %.1f GFLOP/s",
                peak_gflops, bandwidth_gbs, portable_gflops))

floor_of <- function(flops, bytes) {
  compute_s <- flops / (peak_gflops * 1e9)
  memory_s <- bytes / (bandwidth_gbs * 1e9)
  list(seconds = pmax(compute_s, memory_s),
       bound = ifelse(compute_s >= memory_s, "compute", "memory"))
}
geo <- lapply(layer_ids, function(id) geometry(workloads[[id]], batch))
names(geo) <- layer_ids
res$desc <- vapply(layer_ids, function(id) workloads[[id]]$desc, character(1))
for (k in c("P", "KC", "F", "params", "flops", "bytes", "in_elems", "out_elems")) {
  res[[k]] <- vapply(geo, `[[`, numeric(1), k)
}
fl <- floor_of(res$flops, res$bytes)
res$floor_s <- fl$seconds
res$bound <- fl$bound
# predict() reads x and returns its result as R's doubles, 8 bytes a value
# where the floor counts 4: the same floor with those bytes, shown next to
# the forward pass (the targets stay against the floor above).
r_bytes <- res$bytes + 4 * batch * (res$in_elems + res$out_elems)
res$r_floor_s <- floor_of(res$flops, r_bytes)$seconds
if (!is.null(w7$seconds)) {
  layers <- demo_layers()
  # Per step: 3 × a forward pass over a batch of 64 reading the weights once
  # (the target's floor: the model's flops and bytes as if one layer, which
  # count the images but no activation between the layers).
  step_floor <- floor_of(3 * 64 * sum(layers$flops),
                         3 * 4 * (sum(layers$weights) + 64 * layers$inputs[1]))
  w7$floor_s <- w7$steps * step_floor$seconds
  w7$bound <- step_floor$bound
  # Not the target: the sum of each layer's own floor, with its input and
  # output activations counted as W1–W6's floors count theirs.
  layer_floors <- floor_of(3 * 64 * layers$flops,
                           3 * 4 * (layers$weights + 64 * (layers$inputs + layers$outputs)))
  w7$layer_floor_s <- w7$steps * sum(layer_floors$seconds)
  w7$layer_bounds <- layer_floors$bound
}

# --- (e) RESULTS.md ------------------------------------------------------------
cpu_model <- local({
  info <- tryCatch(readLines("/proc/cpuinfo"), error = function(e) character(0))
  m <- grep("^model name", info, value = TRUE)
  if (length(m)) trimws(sub("^[^:]*:", "", m[1])) else Sys.info()[["machine"]]
})
mem_total_gib <- tryCatch({
  l <- grep("^MemTotal:", readLines("/proc/meminfo"), value = TRUE)
  as.numeric(sub("^MemTotal:\\s*(\\d+).*$", "\\1", l)) / 1024^2
}, error = function(e) NA)
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
fmt_ms <- function(s) {
  x <- 1e3 * s
  ifelse(is.na(x), "–", ifelse(x >= 100, fmt(x, 0), ifelse(x >= 10, fmt(x, 1), fmt(x, 2))))
}
fmt_s <- function(s) ifelse(is.na(s), "–", ifelse(s >= 10, fmt(s, 1), fmt(s, 2)))
fmt_ratio <- function(r) {
  vapply(r, function(v) {
    if (is.na(v)) "–" else paste0(fmt(v, if (v >= 10) 0 else if (v >= 1) 1 else 2), "×")
  }, character(1))
}
md_row <- function(cells) paste0("| ", paste(cells, collapse = " | "), " |")
geomean <- function(x) {
  x <- x[is.finite(x) & x > 0]
  if (length(x)) exp(mean(log(x))) else NA
}

# Skipped peer measures get a footnote letter; the reasons are listed once.
skip_notes <- character(0)
peer_cell <- function(id, peer, measure, value_fmt, field = "seconds") {
  if (is.null(peers)) return("–")
  r <- peers[peers$id == id & peers$peer == peer & peers$measure == measure, ]
  if (!nrow(r)) return("–")
  if (r$status[1] == "ok") return(value_fmt(r[[field]][1]))
  reason <- r$reason[1]
  k <- match(reason, skip_notes)
  if (is.na(k)) {
    skip_notes <<- c(skip_notes, reason)
    k <- length(skip_notes)
  }
  sprintf("skipped [%d]", k)
}
best_peer <- function(id, measure) {
  if (is.null(peers)) return(list(seconds = NA, peer = NA))
  r <- peers[peers$id == id & peers$measure == measure & peers$status == "ok", ]
  if (!nrow(r)) return(list(seconds = NA, peer = NA))
  i <- which.min(r$seconds)
  list(seconds = r$seconds[i], peer = peer_labels[[r$peer[i]]])
}

# A table of lcnn against its floor and the peers for one measure.
measure_table <- function(measure, lcnn_s, floor_s, floor_label, ratio_label, target,
                          value_fmt, unit) {
  head <- c("id", paste0("lcnn (", unit, ")"),
            if (!is.null(floor_s)) c(paste0(floor_label, " (", unit, ")"),
                                     ratio_label),
            unname(peer_labels[peer_ids]), "best peer", "lcnn / best peer")
  align <- c("---", rep("---:", length(head) - 1))
  best <- lapply(layer_ids, function(id) best_peer(id, measure))
  best_s <- vapply(best, function(b) as.numeric(b$seconds), numeric(1))
  vs_peer <- lcnn_s / best_s
  rows <- vapply(seq_along(layer_ids), function(i) {
    id <- layer_ids[i]
    cells <- c(id, value_fmt(lcnn_s[i]),
               if (!is.null(floor_s)) c(value_fmt(floor_s[i]), fmt_ratio(lcnn_s[i] / floor_s[i])),
               vapply(peer_ids, function(p) peer_cell(id, p, measure, value_fmt), character(1)),
               if (is.na(best_s[i])) "–" else sprintf("%s (%s)", value_fmt(best_s[i]), best[[i]]$peer),
               fmt_ratio(vs_peer[i]))
    md_row(cells)
  }, character(1))
  summary <- c(
    if (!is.null(floor_s)) sprintf("%s, geometric mean over %s: %s.", ratio_label,
                                   paste(layer_ids, collapse = ", "),
                                   fmt_ratio(geomean(lcnn_s / floor_s))),
    if (length(peer_ids)) sprintf("lcnn / best peer, geometric mean over the workloads a peer ran: %s (below 1: lcnn is faster).",
                                  fmt_ratio(geomean(vs_peer))),
    target)
  c(md_row(head), paste0("|", paste(align, collapse = "|"), "|"), rows, "", summary)
}

train_floor_s <- 3 * res$floor_s
forward_tab <- measure_table("forward", res$forward_s, res$floor_s, "floor", "lcnn / floor",
                             "Targets (DESIGN.md §3): lcnn / floor ≤ 1.5× on every workload; lcnn / best peer ≤ 1× on every workload and ≤ 0.5× on the geometric mean.",
                             fmt_ms, "ms")
train_tab <- measure_table("train_step", res$train_s, train_floor_s, "3 × floor", "lcnn / (3 × floor)",
                           "Targets (DESIGN.md §3): lcnn / (3 × floor) ≤ 2× on every workload; lcnn / best peer as for the forward pass.",
                           fmt_ms, "ms")
r_floor_tab <- c(
  paste("| id | lcnn (ms) | floor with R's doubles (ms) | lcnn / that floor |",
        "engine alone (ms) | engine alone / floor | R's arrays: lcnn − engine alone (ms) |"),
  "|---|---:|---:|---:|---:|---:|---:|",
  sprintf("| %s | %s | %s | %s | %s | %s | %s |", res$id, fmt_ms(res$forward_s),
          fmt_ms(res$r_floor_s), fmt_ratio(res$forward_s / res$r_floor_s),
          fmt_ms(res$engine_forward_s), fmt_ratio(res$engine_forward_s / res$floor_s),
          fmt_ms(res$forward_s - res$engine_forward_s)),
  "",
  sprintf("Geometric means over %s: lcnn / floor with R's doubles %s; engine alone / floor %s.",
          paste(layer_ids, collapse = ", "), fmt_ratio(geomean(res$forward_s / res$r_floor_s)),
          fmt_ratio(geomean(res$engine_forward_s / res$floor_s))))
first_tab <- measure_table("first_output", res$first_output_s, NULL, NULL, NULL,
                           "Target (DESIGN.md §3): independent of P (W5 has the most positions, W6 the fewest).",
                           fmt_s, "s")

patch_mb <- 4 * batch * res$P * res$KC / 1e6
# DESIGN.md's allowance: weights, gradients, optimizer state (none for SGD)
# and twice the activations (input and output of the layer).
budget_mb <- 4 * (2 * res$params + 2 * batch * (res$in_elems + res$out_elems)) / 1e6
memory_tab <- c(
  md_row(c("id", "lcnn peak extra (MB)", "allowance (MB)", "lcnn / allowance",
           "whole-batch patch tensor (MB)", unname(peer_labels[peer_ids]))),
  paste0("|---|", strrep("---:|", 4 + length(peer_ids))),
  vapply(seq_along(layer_ids), function(i) {
    id <- layer_ids[i]
    peer_mb <- function(v) if (is.na(v)) "?" else fmt(v, 0)
    md_row(c(id, fmt(res$peak_extra_mb[i], 0), fmt(budget_mb[i], 0),
             fmt_ratio(res$peak_extra_mb[i] / budget_mb[i]), fmt(patch_mb[i], 0),
             vapply(peer_ids, function(p) peer_cell(id, p, "train_step", peer_mb, "peak_extra_mb"),
                    character(1))))
  }, character(1)),
  "",
  "Peak resident memory over the first training steps minus the resident memory just before them, in a fresh process (lcnn: median over the fresh runs). Allowance (DESIGN.md §3): weights + gradients + optimizer state (none for SGD) + 2 × activations = 4·(2·params + 2·B·(input + output)) bytes; the target is lcnn / allowance ≤ 1×, and no whole-batch patch tensor when it is larger than the activations."
)

conv_tab <- c(
  "| id | locally connected step (ms) | convolution step (ms) | locally connected / convolution |",
  "|---|---:|---:|---:|",
  sprintf("| %s | %s | %s | %s |", res$id, fmt_ms(res$train_s), fmt_ms(res$conv_train_s),
          fmt_ratio(res$train_s / res$conv_train_s)),
  "",
  "The convolution is lcnn's own `layer_conv_2d()` (`layer_conv_1d()` for W5) with the same filters, kernel and padding: the same flops with shared weights. Target (DESIGN.md §3): locally connected / convolution ≤ 1.5× at B ≥ 64."
)

native_tab <- if (is.null(native)) {
  "Not measured (`LCNN_BENCH_NATIVE=0`, the default of a quick run)."
} else {
  ratio <- function(a, b) fmt_ratio(a / b)
  c("| id | forward, portable (ms) | forward, native (ms) | native / portable | step, portable (ms) | step, native (ms) | native / portable |",
    "|---|---:|---:|---:|---:|---:|---:|",
    sprintf("| %s | %s | %s | %s | %s | %s | %s |", res$id, fmt_ms(res$forward_s),
            fmt_ms(native$forward_s), ratio(native$forward_s, res$forward_s),
            fmt_ms(res$train_s), fmt_ms(native$train_s), ratio(native$train_s, res$train_s)),
    "",
    sprintf("Geometric mean of native / portable: forward %s, training step %s. The portable build is the installed package (R's flags, CPU kernels in use: %s); the native one is the same source installed into bench/out/lib-native with `CXX17FLAGS = -O3 -march=native`, timed in a fresh process per workload. Target (DESIGN.md §3): the portable build reaches at least 80%% of the native build's speed, i.e. native / portable ≥ 0.8×.",
            fmt_ratio(geomean(native$forward_s / res$forward_s)),
            fmt_ratio(geomean(native$train_s / res$train_s)), lcnn_cpu_kernels()$in_use))
}

tuned_tab <- if (is.null(tuned)) {
  "Not measured (`LCNN_BENCH_TUNED_MALLOC=0`, the default of a quick run)."
} else {
  best_fwd <- vapply(layer_ids, function(id) as.numeric(best_peer(id, "forward")$seconds),
                     numeric(1))
  c("| id | forward, default (ms) | forward, glibc keeping memory (ms) | tuned / default | tuned / best peer | step, default (ms) | step, glibc keeping memory (ms) | tuned / default |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
    sprintf("| %s | %s | %s | %s | %s | %s | %s | %s |", res$id, fmt_ms(res$forward_s),
            fmt_ms(tuned$forward_s), fmt_ratio(tuned$forward_s / res$forward_s),
            fmt_ratio(tuned$forward_s / best_fwd), fmt_ms(res$train_s), fmt_ms(tuned$train_s),
            fmt_ratio(tuned$train_s / res$train_s)),
    "",
    sprintf("The installed build again, timed in a fresh process per workload started with `%s`: glibc keeps up to 1 GiB of freed heap instead of trimming it, so that what R allocates from it reuses pages already mapped instead of faulting fresh ones in. `predict()`'s outputs of 2 MiB or more are mapped by lcnn apart from that heap (README.md, \"Engine and speed\"); smaller ones and R's other vectors come from it. The default columns repeat the tables above. This is a setting of the user's R process, not of lcnn.",
            tuned_malloc_env))
}

detail <- c(
  "| id | layer | B | P | K·C | F | params | flops (G) | bytes (MB) | bound | forward median / min (ms), reps | training step median / min (ms), reps | first output: create (s), fresh runs |",
  "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
  sprintf("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s / %s, %d | %s / %s, %d | %s, %d |",
          res$id, res$desc, batch, fmt(res$P, 0), fmt(res$KC, 0), fmt(res$F, 0),
          fmt(res$params, 0), fmt(res$flops / 1e9, 3), fmt(res$bytes / 1e6, 1), res$bound,
          fmt_ms(res$forward_s), fmt_ms(res$forward_min_s), res$forward_reps,
          fmt_ms(res$train_s), fmt_ms(res$train_min_s), res$train_reps,
          fmt_s(res$create_s), res$fresh_runs)
)

w7_lines <- if (is.null(w7)) {
  "W7 not selected."
} else if (!is.null(w7$note)) {
  w7$note
} else {
  c("| measure | lcnn | floor | lcnn / floor |",
    "|---|---:|---:|---:|",
    sprintf("| one epoch, %s images, batch %d (%d steps), Adam | %s s (median of %d) | %s s (%s) | %s |",
            fmt(w7$samples, 0), w7$batch, w7$steps, fmt_s(w7$seconds), w7$reps,
            fmt_s(w7$floor_s), w7$bound, fmt_ratio(w7$seconds / w7$floor_s)),
    "",
    sprintf("`fit(model, x, y, epochs = 1, batch_size = 64, verbose = 0)` after a warm-up fit on 640 images; training accuracy after the timed epochs: %.3f. Floor: steps × 3 × the forward floor of a batch (flops of both locally connected and both dense layers, weights and images read once, no activation between the layers counted). Peers are not run on W7.",
            w7$accuracy),
    "",
    sprintf("Not a target (bench/README.md): the sum of each layer's own floor, its input and output activations counted as in W1–W6's floors (bounds, layer by layer: %s), is %s s; lcnn / that floor: %s.",
            paste(w7$layer_bounds, collapse = ", "), fmt_s(w7$layer_floor_s),
            fmt_ratio(w7$seconds / w7$layer_floor_s)))
}

peer_line <- if (!is.null(peers_note)) {
  peers_note
} else {
  v <- peer_versions
  sprintf("Python %s in `%s`: tensorflow %s, tf_keras %s, torch %s, jax %s (jaxlib %s), numpy %s; per peer measure a time limit of %g s and an estimated-memory limit of %g GB",
          v$python, peers_venv, v$tensorflow %||% "absent", v$tf_keras %||% "absent",
          v$torch %||% "absent", v$jax %||% "absent", v$jaxlib %||% "absent", v$numpy,
          settings$peer_time_limit, settings$peer_memory_gb)
}

floor_detail <- grep("^gemm_gflops_n", names(floor_vals), value = TRUE)
elapsed <- now() - run_start
# Other processes take cores from lcnn's and the peers' threads: with a load
# average above half a core before the run, or a quarter of a core taken by
# others during it, the timings are not comparable.
busy <- as.numeric(sub(" .*", "", load_start)) > 0.5 || others_cores > 0.25
# A virtual machine's host can take speed from it without any process of
# its own showing in the load average: the floor's GEMM, measured before
# and after the workloads, then disagrees with itself (one session saw
# 208 and 290 GFLOP/s in one run, bench/NOTES.md).
unsteady <- min(peak_runs) < 0.85 * max(peak_runs)
md <- c(
  "# lcnn benchmarks",
  "",
  if (quick) c(paste0("**QUICK run (`LCNN_BENCH_QUICK=1`): batch ", batch, " instead of 64, ",
                      settings$min_reps, "–", settings$max_reps, " repeats, W7 on ",
                      fmt(settings$epoch_samples, 0), " images. A smoke test, not for comparison.**"), ""),
  if (busy) c(sprintf("**Other work shared the machine: load average %s (1, 5, 15 min) before the run, and other processes used %.2f of the %d cores on average during it. Timings under load are noisy and not for comparison.**",
                      load_start, others_cores, parallel::detectCores()), ""),
  if (unsteady) c(sprintf("**The machine's speed changed during the run: the floor's GEMM measured %s GFLOP/s before and after the workloads. Timings are noisy and not for comparison.**",
                          paste(fmt(peak_runs, 1), collapse = " and ")), ""),
  sprintf("Generated by `Rscript bench/run.R` on %s (run took %.0f s). See bench/README.md for how each number is measured.",
          format(Sys.time(), "%Y-%m-%d %H:%M %Z"), elapsed),
  "",
  "## Machine",
  "",
  sprintf("- CPU: %s, %d cores (%d logical CPUs), %.1f GiB memory; threads used by lcnn, the floor and every peer: %d",
          cpu_model, parallel::detectCores(logical = FALSE), parallel::detectCores(),
          mem_total_gib, threads),
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
  sprintf("- %s; lcnn %s (from `%s`) built with R's flags (`CXX17FLAGS = %s`)",
          R.version.string, lcnn_version, lcnn_library, r_cxxflags),
  sprintf("- peers: %s", peer_line),
  sprintf("- load average (1, 5, 15 min) before the run: %s; other processes' CPU use during the run: %.2f cores on average (/proc/stat less this run's own CPU time)",
          load_start, others_cores),
  sprintf("- lcnn git commit: %s", commit_desc),
  sprintf("- date: %s", format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z")),
  "",
  "## Workloads",
  "",
  paste0("| id | layer (float32, batch ", batch, ") |"), "|---|---|",
  sprintf("| %s | %s |", res$id, res$desc),
  if ("W7" %in% selected) sprintf("| W7 | %s |", w7_desc),
  "",
  "floor = max(flops / peak GEMM, bytes / read bandwidth), flops = 2·B·P·K·C·F,",
  "bytes = 4·(P·K·C·F + B·input + B·output); a training step's floor is 3 × the forward's.",
  "",
  sprintf("## Forward pass (ms): lcnn `predict(model, x, batch_size = %d)`", batch),
  "",
  forward_tab,
  "",
  "`predict()` reads `x` and returns its result as R's doubles, 8 bytes a value where the floor counts 4. Neither column here is a target (bench/README.md): the same floor with bytes = 4·P·K·C·F + 8·B·input + 8·B·output, and the engine alone, the same network's forward pass over a batch it already holds in float32 (the median of as many passes as `predict()` had), with its ratio to the floor of the table above:",
  "",
  r_floor_tab,
  "",
  "## Training step (ms): forward, backward, SGD update",
  "",
  train_tab,
  "",
  "## Time to first output (s): layer creation + first forward, fresh process",
  "",
  first_tab,
  "",
  "## Peak extra memory of a training step (MB)",
  "",
  memory_tab,
  "",
  "## Locally connected vs convolution, training step",
  "",
  conv_tab,
  "",
  "## Portable build vs -march=native build",
  "",
  native_tab,
  "",
  "## R's process with glibc keeping freed memory",
  "",
  tuned_tab,
  "",
  "## W7: one epoch of the demo model",
  "",
  w7_lines,
  "",
  if (length(skip_notes)) c("## Peer measures not run", "",
                            sprintf("- [%d] %s", seq_along(skip_notes), skip_notes), ""),
  "## Details",
  "",
  detail,
  ""
)
writeLines(md, results_file)
message("wrote ", results_file, sprintf(" (%.0f s in all)", now() - run_start))
