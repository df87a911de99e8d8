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
#' The engine runs each layer on this many threads. It is, in order:
#' `getOption("lcnn.num_threads")`; the environment variable
#' `LCNN_NUM_THREADS`; otherwise the number of cores of the machine.
#' Results do not depend on it beyond float rounding.
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
  cores <- parallel::detectCores()
  if (is.na(cores)) 1L else as.integer(cores)
}
