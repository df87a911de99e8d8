# Package-wide settings: the default image data format and the thread count.

keras_config_file <- function() {
  home <- Sys.getenv("KERAS_HOME", unset = "")
  if (!nzchar(home)) home <- file.path(path.expand("~"), ".keras")
  file.path(home, "keras.json")
}

# The `image_data_format` field of keras.json, or NULL. The file is only read.
keras_json_data_format <- function(path = keras_config_file()) {
  if (!file.exists(path)) return(NULL)
  text <- paste(readLines(path, warn = FALSE), collapse = " ")
  found <- regmatches(text, regexec('"image_data_format"\\s*:\\s*"([A-Za-z_]+)"', text))[[1]]
  if (length(found) == 2) found[2] else NULL
}

#' The default image data format
#'
#' Layers created with `data_format = NULL` use this format. It is, in order:
#' `getOption("lcnn.image_data_format")`; the `image_data_format` field of
#' Keras's configuration file `keras.json` (in `$KERAS_HOME`, or `~/.keras`),
#' if that file exists (lcnn only reads it); otherwise `"channels_last"`.
#'
#' @return `"channels_last"` or `"channels_first"`.
#' @family configuration
#' @export
#' @examples
#' k_image_data_format()
#' old <- options(lcnn.image_data_format = "channels_first")
#' k_image_data_format()
#' options(old)
k_image_data_format <- function() {
  option <- getOption("lcnn.image_data_format")
  if (!is.null(option)) {
    return(check_choice(option, c("channels_last", "channels_first"),
                        arg = "options(lcnn.image_data_format)", call = rlang::caller_env()))
  }
  from_file <- keras_json_data_format()
  if (!is.null(from_file)) {
    return(check_choice(from_file, c("channels_last", "channels_first"),
                        arg = paste0("image_data_format in ", keras_config_file()),
                        call = rlang::caller_env()))
  }
  "channels_last"
}

resolve_data_format <- function(data_format, call = rlang::caller_env()) {
  if (is.null(data_format)) return(k_image_data_format())
  check_choice(data_format, c("channels_last", "channels_first"), call = call)
}

#' Number of CPU threads the engine uses
#'
#' The engine runs each step of a layer on this many threads. It is the
#' first of:
#'
#' 1. `getOption("lcnn.num_threads")`;
#' 2. the environment variable `LCNN_NUM_THREADS`;
#' 3. 1 in a process forked from one that had loaded lcnn (the workers of
#'    [parallel::mclapply()] and of other fork-based parallel code), so that
#'    several workers do not each take every core;
#' 4. the number of physical cores (hyperthreads share a core's arithmetic
#'    units, so they add little to the engine's dense loops) among the CPUs
#'    the process may run on, capped by `OMP_THREAD_LIMIT` and by the first
#'    value of `OMP_NUM_THREADS` where these environment variables are set to
#'    whole numbers >= 1 (schedulers such as Slurm set them to a job's share).
#'
#' The first two must be whole numbers >= 1 and give an error otherwise.
#' Results do not depend on the thread count: the engine splits its work
#' into pieces fixed by the problem size, whatever the number of threads.
#'
#' The engine's threads are its own (not OpenMP's): while waiting for work
#' they spin for at most 0.1 ms and then sleep, so they leave cores free to R
#' and other processes between steps, and a thread whose core another process
#' takes leaves its share of a step to the others. Two R processes training at
#' once on the same cores still compete for them: give each a share with the
#' option. The engine sets flush-to-zero (subnormal floats count as zero) on
#' its threads while it computes, as TensorFlow does, and restores R's
#' floating-point settings afterwards.
#'
#' @return A whole number >= 1.
#' @family configuration
#' @export
#' @examples
#' lcnn_num_threads()
#' old <- options(lcnn.num_threads = 1)
#' lcnn_num_threads()
#' options(old)
lcnn_num_threads <- function() {
  option <- getOption("lcnn.num_threads")
  if (!is.null(option)) {
    return(check_count(option, arg = "options(lcnn.num_threads)", call = rlang::caller_env()))
  }
  env <- Sys.getenv("LCNN_NUM_THREADS", unset = "")
  if (nzchar(env)) {
    value <- suppressWarnings(as.numeric(env))
    return(check_count(if (is.na(value)) env else value,
                       arg = "LCNN_NUM_THREADS", call = rlang::caller_env()))
  }
  if (.engine_in_forked_child()) return(1L)
  limits <- c(omp_thread_setting("OMP_THREAD_LIMIT"), omp_thread_setting("OMP_NUM_THREADS"))
  as.integer(min(.engine_available_cores(), limits))
}

# An OpenMP thread setting as a count, or NULL where it is unset or not a
# whole number >= 1 (OpenMP runtimes ignore such values too).
# OMP_NUM_THREADS may list counts for nested levels: the first is the outer one.
omp_thread_setting <- function(name) {
  setting <- Sys.getenv(name, unset = "")
  if (!nzchar(setting)) return(NULL)
  first <- trimws(strsplit(setting, ",", fixed = TRUE)[[1]][1])
  value <- suppressWarnings(as.numeric(first))
  if (is.na(value) || value < 1 || value != round(value)) NULL else value
}
