# Argument checks shared by the layer and model constructors. Each returns
# the normalized value or raises an lcnn_error_argument naming the argument,
# what it got and what it needs.

is_whole <- function(x) {
  is.numeric(x) && !anyNA(x) && all(is.finite(x)) && all(x == round(x))
}

# Whether data hold a value a model of `dtype` cannot train on: NA, NaN,
# an infinite value, or for float32 one beyond float32's range, which the
# conversion would make infinite. The engine scans doubles on lcnn's
# threads and the CPU's widest vectors, where anyNA() reads one value at a
# time: 57 ms against 16 ms on two cores for Fashion-MNIST's training
# images, which fit() checks on every call (bench/NOTES.md).
any_not_finite <- function(x, dtype) {
  if (!is.double(x)) return(anyNA(x))
  .engine_any_not_finite(x, largest_value(dtype), lcnn_num_threads())
}

largest_value <- function(dtype) {
  if (dtype == "float32") float32_max else .Machine$double.xmax
}

# Whole numbers as R's integers, which reach 2147483647 either way:
# as.integer() turns a larger one into NA with only a warning, and that NA
# then stood for a kernel size, a seed or an axis.
as_checked_integer <- function(x, arg, call) {
  if (any(abs(x) > .Machine$integer.max)) {
    largest <- .Machine$integer.max
    lcnn_abort(c("{.arg {arg}} must be no larger in size than R's largest integer, \\
                  {largest}.",
                 x = "Got {format_value(x)}."),
               "argument", call = call)
  }
  as.integer(x)
}

check_count <- function(x, arg = rlang::caller_arg(x), call = rlang::caller_env(),
                        min = 1) {
  if (!is_whole(x) || length(x) != 1 || x < min) {
    lcnn_abort(c("{.arg {arg}} must be a whole number >= {min}.",
                 x = "Got {format_value(x)}."),
               "argument", call = call)
  }
  as_checked_integer(x, arg, call)
}

check_whole <- function(x, arg = rlang::caller_arg(x), call = rlang::caller_env()) {
  if (!is_whole(x) || length(x) != 1) {
    lcnn_abort(c("{.arg {arg}} must be a whole number.", x = "Got {format_value(x)}."),
               "argument", call = call)
  }
  as_checked_integer(x, arg, call)
}

# An integer or a vector of `n` integers, each >= 1, as Keras takes
# kernel_size and strides; returns a vector of length n.
check_tuple <- function(x, n, arg = rlang::caller_arg(x), call = rlang::caller_env()) {
  if (!is_whole(x) || !(length(x) %in% c(1, n)) || any(x < 1)) {
    expected <- if (n == 1) "a whole number >= 1" else
      paste("a whole number >= 1 or a vector of", n, "of them")
    lcnn_abort(c("{.arg {arg}} must be {expected}.",
                 x = "Got {format_value(x)}."),
               "argument", call = call)
  }
  rep_len(as_checked_integer(x, arg, call), n)
}

check_flag <- function(x, arg = rlang::caller_arg(x), call = rlang::caller_env()) {
  if (!is.logical(x) || length(x) != 1 || is.na(x)) {
    lcnn_abort(c("{.arg {arg}} must be TRUE or FALSE.",
                 x = "Got {format_value(x)}."),
               "argument", call = call)
  }
  x
}

# One of `choices`, ignoring case as Keras does for padding and data_format.
check_choice <- function(x, choices, arg = rlang::caller_arg(x), call = rlang::caller_env()) {
  if (!is.character(x) || length(x) != 1 || is.na(x) || !(tolower(x) %in% choices)) {
    lcnn_abort(c("{.arg {arg}} must be one of {.val {choices}}.",
                 x = "Got {format_value(x)}."),
               "argument", call = call)
  }
  tolower(x)
}

check_string <- function(x, arg = rlang::caller_arg(x), call = rlang::caller_env()) {
  if (!is.character(x) || length(x) != 1 || is.na(x) || !nzchar(x)) {
    lcnn_abort(c("{.arg {arg}} must be a single non-empty string.",
                 x = "Got {format_value(x)}."),
               "argument", call = call)
  }
  x
}

check_name <- function(x, arg = rlang::caller_arg(x), call = rlang::caller_env()) {
  if (is.null(x)) return(NULL)
  if (!is.character(x) || length(x) != 1 || is.na(x) || !nzchar(x)) {
    lcnn_abort(c("{.arg {arg}} must be a single non-empty string or NULL.",
                 x = "Got {format_value(x)}."),
               "argument", call = call)
  }
  x
}

check_dtype <- function(x, arg = rlang::caller_arg(x), call = rlang::caller_env()) {
  if (is.null(x)) return(NULL)
  check_choice(x, c("float32", "float64"), arg = arg, call = call)
}

# A per-sample shape: whole numbers >= 1, every dimension known.
check_shape <- function(x, arg = rlang::caller_arg(x), call = rlang::caller_env()) {
  # Named before x changes below: caller_arg() reads x's expression.
  force(arg)
  given <- x
  if (is.list(x)) {
    if (any(vapply(x, is.null, logical(1)))) x <- NA
    else x <- unlist(x)
  }
  if (!is_whole(x) || length(x) < 1 || any(x < 1)) {
    lcnn_abort(c("{.arg {arg}} must be a vector of whole numbers >= 1, one per dimension \\
                  (without the batch dimension), all known.",
                 x = "Got {format_value(given)}."),
               "argument", call = call)
  }
  as_checked_integer(x, arg, call)
}

# input_shape, batch_input_shape and batch_size as Keras takes them, reduced
# to list(shape = per-sample dims or NULL, batch = batch size or NULL).
check_input_spec <- function(input_shape, batch_input_shape, batch_size,
                             call = rlang::caller_env()) {
  batch <- if (is.null(batch_size)) NULL else check_count(batch_size, call = call)
  if (!is.null(batch_input_shape)) {
    if (!is.null(input_shape)) {
      lcnn_abort(c("Give {.arg input_shape} or {.arg batch_input_shape}, not both."),
                 "argument", call = call)
    }
    first <- if (is.list(batch_input_shape)) batch_input_shape[[1]] else batch_input_shape[1]
    if (!is.null(first) && !is.na(first)) {
      batch <- check_count(first, arg = "batch_input_shape[[1]]", call = call)
    }
    rest <- if (is.list(batch_input_shape)) batch_input_shape[-1] else batch_input_shape[-1]
    return(list(shape = check_shape(rest, arg = "batch_input_shape[-1]", call = call),
                batch = batch))
  }
  shape <- if (is.null(input_shape)) NULL else check_shape(input_shape, call = call)
  list(shape = shape, batch = batch)
}

# `x` itself if it is an object of `class`, else the default object that its
# name (after `key()`) stands for in `table` of constructors.
object_or_name <- function(x, class, table, what, arg, call, key = tolower) {
  if (inherits(x, class)) return(x)
  if (is.character(x) && length(x) == 1 && !is.na(x) && key(x) %in% names(table)) {
    return(table[[key(x)]]())
  }
  lcnn_abort(c("{.arg {arg}} must be {what}.", x = "Got {format_value(x)}.",
               i = "Known names: {.val {names(table)}}."),
             "argument", call = call)
}

# The `...` of a method whose generic passes nothing through it must be
# empty: R would drop a misspelled argument there (`batchsize = 1`)
# silently. Names the method's arguments for the caller to compare.
check_dots_empty <- function(..., call = rlang::caller_env()) {
  if (...length() == 0) return(invisible())
  given <- ...names() %||% rep("", ...length())
  given[is.na(given)] <- ""
  named <- given[given != ""]
  unnamed <- sum(given == "")
  takes <- setdiff(names(formals(sys.function(sys.parent()))), "...")
  extra <- "{unnamed} unnamed argument{?s} more than it takes."
  message <- if (length(named) == 0) extra else
    c("Unknown argument{?s} {.arg {named}}.", x = if (unnamed) extra)
  lcnn_abort(c(message, i = "It takes {.arg {takes}}."), "argument", call = call)
}
