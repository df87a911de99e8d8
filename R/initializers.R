# Initializers: specs in R, values drawn by the engine from a seed that R's
# RNG provides (so set.seed() reproduces them), with Keras's fans computed on
# the Keras-layout shape of the weight (KERAS_SEMANTICS.md section 5).

new_initializer <- function(name, ..., seed = NULL, call = rlang::caller_env()) {
  if (!is.null(seed)) seed <- check_count(seed, min = 0, call = call)
  structure(list(name = name, args = list(...), seed = seed), class = "lcnn_initializer")
}

# A finite number, > 0 if `positive`, in [min, max], and below `below` (an
# open upper bound, such as 1 for a decay rate).
check_number <- function(x, arg = rlang::caller_arg(x), call = rlang::caller_env(),
                         positive = FALSE, min = -Inf, max = Inf, below = Inf) {
  if (!is.numeric(x) || length(x) != 1 || !is.finite(x) || (positive && x <= 0) ||
      x < min || x > max || x >= below) {
    what <- if (positive) "a finite number > 0"
            else if (is.finite(below)) paste0("a number in [", min, ", ", below, ")")
            else if (is.finite(max)) paste0("a number in [", min, ", ", max, "]")
            else if (is.finite(min)) paste0("a finite number >= ", min)
            else "a finite number"
    lcnn_abort(c("{.arg {arg}} must be {what}.", x = "Got {format_value(x)}."),
               "argument", call = call)
  }
  as.numeric(x)
}

#' Weight initializers
#'
#' Initializers with the names, arguments and defaults of Keras 2. Pass one
#' (or its name, such as `"he_normal"`) as `kernel_initializer` or
#' `bias_initializer`.
#'
#' The variance-scaling family (glorot, he, lecun and
#' `initializer_variance_scaling()`) scales by `fan_in`, `fan_out` or their
#' mean, computed as Keras computes them on the Keras-layout shape of the
#' weight, so each `implementation` of a locally connected layer gets the
#' scale Keras gives it. The `"normal"` distributions are truncated at two
#' standard deviations, as in Keras. Values are drawn with a seed taken from
#' R's random number generator, so `set.seed()` reproduces them; give `seed`
#' to make an initializer independent of it. Large weights are drawn on
#' `lcnn_num_threads()` threads, in blocks whose values do not depend on the
#' thread count: a seed gives the same weights on one thread or many.
#'
#' @param seed `NULL` or a whole number >= 0.
#' @return An `lcnn_initializer` object.
#' @family initializers
#' @name initializers
#' @examples
#' initializer_he_normal()
#' initializer_random_uniform(minval = -0.1, maxval = 0.1, seed = 42)
NULL

#' @rdname initializers
#' @export
initializer_glorot_uniform <- function(seed = NULL) new_initializer("glorot_uniform", seed = seed)

#' @rdname initializers
#' @export
initializer_glorot_normal <- function(seed = NULL) new_initializer("glorot_normal", seed = seed)

#' @rdname initializers
#' @export
initializer_he_uniform <- function(seed = NULL) new_initializer("he_uniform", seed = seed)

#' @rdname initializers
#' @export
initializer_he_normal <- function(seed = NULL) new_initializer("he_normal", seed = seed)

#' @rdname initializers
#' @export
initializer_lecun_uniform <- function(seed = NULL) new_initializer("lecun_uniform", seed = seed)

#' @rdname initializers
#' @export
initializer_lecun_normal <- function(seed = NULL) new_initializer("lecun_normal", seed = seed)

#' @rdname initializers
#' @param mean,stddev Mean and standard deviation of the normal distribution.
#' @export
initializer_random_normal <- function(mean = 0, stddev = 0.05, seed = NULL) {
  new_initializer("random_normal", mean = check_number(mean),
                  stddev = check_number(stddev, positive = TRUE), seed = seed)
}

#' @rdname initializers
#' @param minval,maxval Bounds of the uniform distribution.
#' @export
initializer_random_uniform <- function(minval = -0.05, maxval = 0.05, seed = NULL) {
  minval <- check_number(minval)
  maxval <- check_number(maxval)
  if (maxval <= minval) {
    lcnn_abort(c("{.arg maxval} must be greater than {.arg minval}.",
                 x = "Got minval = {minval} and maxval = {maxval}."), "argument")
  }
  new_initializer("random_uniform", minval = minval, maxval = maxval, seed = seed)
}

#' @rdname initializers
#' @export
initializer_truncated_normal <- function(mean = 0, stddev = 0.05, seed = NULL) {
  new_initializer("truncated_normal", mean = check_number(mean),
                  stddev = check_number(stddev, positive = TRUE), seed = seed)
}

#' @rdname initializers
#' @param scale Scaling factor (> 0).
#' @param mode One of `"fan_in"`, `"fan_out"`, `"fan_avg"`.
#' @param distribution One of `"truncated_normal"` (also `"normal"`),
#'   `"untruncated_normal"` or `"uniform"`.
#' @export
initializer_variance_scaling <- function(scale = 1, mode = "fan_in",
                                         distribution = "truncated_normal", seed = NULL) {
  mode <- check_choice(mode, c("fan_in", "fan_out", "fan_avg"))
  distribution <- check_choice(distribution,
                               c("truncated_normal", "normal", "untruncated_normal", "uniform"))
  if (distribution == "normal") distribution <- "truncated_normal"
  new_initializer("variance_scaling", scale = check_number(scale, positive = TRUE),
                  mode = mode, distribution = distribution, seed = seed)
}

#' @rdname initializers
#' @export
initializer_zeros <- function() new_initializer("constant", value = 0)

#' @rdname initializers
#' @export
initializer_ones <- function() new_initializer("constant", value = 1)

#' @rdname initializers
#' @param value The constant.
#' @export
initializer_constant <- function(value = 0) {
  new_initializer("constant", value = check_number(value))
}

#' @export
print.lcnn_initializer <- function(x, ...) {
  args <- c(x$args, if (!is.null(x$seed)) list(seed = x$seed))
  shown <- vapply(args, deparse_short, character(1))
  cat("<initializer: ", x$name,
      if (length(shown)) paste0("(", paste(names(shown), shown, sep = " = ", collapse = ", "), ")"),
      ">\n", sep = "")
  invisible(x)
}

initializer_by_name <- list(
  glorot_uniform = initializer_glorot_uniform, glorot_normal = initializer_glorot_normal,
  he_uniform = initializer_he_uniform, he_normal = initializer_he_normal,
  lecun_uniform = initializer_lecun_uniform, lecun_normal = initializer_lecun_normal,
  random_normal = initializer_random_normal, random_uniform = initializer_random_uniform,
  truncated_normal = initializer_truncated_normal,
  variance_scaling = initializer_variance_scaling,
  zeros = initializer_zeros, ones = initializer_ones, constant = initializer_constant
)

# An initializer object from an object or a Keras name ("he_normal",
# "HeNormal", "zeros").
check_initializer <- function(x, arg = rlang::caller_arg(x), call = rlang::caller_env()) {
  object_or_name(x, "lcnn_initializer", initializer_by_name,
                 "an initializer name or an `initializer_*()` object", arg, call,
                 key = function(name) {
                   key <- tolower(gsub("([a-z0-9])([A-Z])", "\\1_\\2", name))
                   if (key %in% c("zero", "one")) paste0(key, "s") else key
                 })
}

# Keras's fans of a weight of Keras-layout shape `dims`.
compute_fans <- function(dims) {
  dims <- as.numeric(dims)
  n <- length(dims)
  if (n == 0) return(c(fan_in = 1, fan_out = 1))
  if (n == 1) return(c(fan_in = dims, fan_out = dims))
  if (n == 2) return(c(fan_in = dims[1], fan_out = dims[2]))
  receptive <- prod(dims[seq_len(n - 2)])
  c(fan_in = dims[n - 1] * receptive, fan_out = dims[n] * receptive)
}

# The engine distribution (name, a, b) an initializer draws from for a weight
# of Keras shape `dims`.
initializer_distribution <- function(init, dims) {
  a <- init$args
  scaled <- switch(init$name,
    glorot_uniform = list(1, "fan_avg", "uniform"),
    glorot_normal = list(1, "fan_avg", "truncated_normal"),
    he_uniform = list(2, "fan_in", "uniform"),
    he_normal = list(2, "fan_in", "truncated_normal"),
    lecun_uniform = list(1, "fan_in", "uniform"),
    lecun_normal = list(1, "fan_in", "truncated_normal"),
    variance_scaling = list(a$scale, a$mode, a$distribution),
    NULL
  )
  if (is.null(scaled)) {
    return(switch(init$name,
      constant = list("constant", a$value, 0),
      random_normal = list("normal", a$mean, a$stddev),
      random_uniform = list("uniform", a$minval, a$maxval),
      truncated_normal = list("truncated_normal", a$mean, a$stddev)
    ))
  }
  fans <- compute_fans(dims)
  n <- switch(scaled[[2]], fan_in = fans[["fan_in"]], fan_out = fans[["fan_out"]],
              fan_avg = (fans[["fan_in"]] + fans[["fan_out"]]) / 2)
  variance <- scaled[[1]] / max(1, n)
  switch(scaled[[3]],
    uniform = list("uniform", -sqrt(3 * variance), sqrt(3 * variance)),
    # Keras divides by the standard deviation of a unit normal truncated to
    # [-2, 2], so the truncated draws have the intended variance.
    truncated_normal = list("truncated_normal", 0, sqrt(variance) / 0.87962566103423978),
    untruncated_normal = list("normal", 0, sqrt(variance))
  )
}

# `n` initial values for a weight of Keras shape `dims`, in any order (every
# value is drawn independently). With a locally connected `geometry`, they
# form its lcnn-layout kernel, zero at unconnected taps.
initial_values <- function(init, dims, n, dtype, geometry = NULL) {
  d <- initializer_distribution(init, dims)
  seed <- if (!is.null(init$seed)) {
    c(init$seed, 0)
  } else if (d[[1]] == "constant") {
    c(0, 0)
  } else {
    floor(stats::runif(2) * 2^31)
  }
  .random_values(n, d[[1]], d[[2]], d[[3]], seed, dtype, lcnn_num_threads(), geometry)
}
