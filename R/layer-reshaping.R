# Layers that only move values: zero padding, cropping, reshape and
# permute. They have no weights; the engine runs them as gathers
# (src/engine/reshaping.*), which also hold flatten's C-order logic.

#' Zero padding
#'
#' Adds rows and columns of zeros around each sample's spatial axes, as
#' Keras's `ZeroPadding1D` and `ZeroPadding2D`.
#'
#' @section Shape:
#' 1D: input `(batch, steps, features)`, output
#' `(batch, left + steps + right, features)`. 2D: input
#' `(batch, rows, cols, channels)` (`(batch, channels, rows, cols)` with
#' `"channels_first"`), output with `top + rows + bottom` rows and
#' `left + cols + right` columns.
#'
#' @inheritParams layer_max_pooling_2d
#' @param padding 1D: a whole number >= 0 (added at both ends) or two
#'   (`c(left, right)`). 2D: a whole number (added on every side), two
#'   (`c(rows, cols)`, each added on both sides of its axis), or a list of two
#'   pairs, `list(c(top, bottom), c(left, right))`.
#' @param name Layer name; `NULL` gives Keras's automatic name
#'   (`"zero_padding2d"`, ...; see [k_clear_session()]).
#' @return See `object`.
#' @family layers
#' @export
#' @examples
#' layer_zero_padding_2d(array(1, c(1, 2, 2, 1)))[1, , , 1]
#' layer_zero_padding_1d(array(1:3, c(1, 3, 1)), padding = c(2, 0))[1, , 1]
layer_zero_padding_2d <- function(object, padding = c(1L, 1L), data_format = NULL,
                                  input_shape = NULL, batch_input_shape = NULL,
                                  batch_size = NULL, dtype = NULL, name = NULL, trainable = NULL,
                                  weights = NULL) {
  layer_from_arguments(environment(), character(),
                       function(args, call) new_border("zero_padding", 2L, args, call))
}

#' @rdname layer_zero_padding_2d
#' @export
layer_zero_padding_1d <- function(object, padding = 1L, input_shape = NULL,
                                  batch_input_shape = NULL, batch_size = NULL, dtype = NULL,
                                  name = NULL, trainable = NULL, weights = NULL) {
  layer_from_arguments(environment(), character(),
                       function(args, call) new_border("zero_padding", 1L, args, call))
}

#' Cropping
#'
#' Removes rows and columns at the ends of each sample's spatial axes, as
#' Keras's `Cropping1D` and `Cropping2D`.
#'
#' @section Shape:
#' 1D: input `(batch, steps, features)`, output
#' `(batch, steps - left - right, features)`. 2D: input
#' `(batch, rows, cols, channels)` (`(batch, channels, rows, cols)` with
#' `"channels_first"`), output with `rows - top - bottom` rows and
#' `cols - left - right` columns. Cropping a whole axis is an error.
#'
#' @inheritParams layer_max_pooling_2d
#' @param cropping 1D: a whole number >= 0 (removed at both ends) or two
#'   (`c(left, right)`). 2D: a whole number (removed on every side), two
#'   (`c(rows, cols)`, each removed on both sides of its axis), or a list of
#'   two pairs, `list(c(top, bottom), c(left, right))`.
#' @param name Layer name; `NULL` gives Keras's automatic name
#'   (`"cropping2d"`, ...; see [k_clear_session()]).
#' @return See `object`.
#' @family layers
#' @export
#' @examples
#' x <- array(1:20, c(1, 4, 5, 1))
#' layer_cropping_2d(x, cropping = list(c(1, 0), c(1, 2)))[1, , , 1]
#' layer_cropping_1d(array(1:6, c(1, 6, 1)))[1, , 1]
layer_cropping_2d <- function(object, cropping = list(c(0L, 0L), c(0L, 0L)), data_format = NULL,
                              input_shape = NULL, batch_input_shape = NULL, batch_size = NULL,
                              dtype = NULL, name = NULL, trainable = NULL, weights = NULL) {
  layer_from_arguments(environment(), character(),
                       function(args, call) new_border("cropping", 2L, args, call))
}

#' @rdname layer_cropping_2d
#' @export
layer_cropping_1d <- function(object, cropping = c(1L, 1L), input_shape = NULL,
                              batch_input_shape = NULL, batch_size = NULL, dtype = NULL,
                              name = NULL, trainable = NULL, weights = NULL) {
  layer_from_arguments(environment(), character(),
                       function(args, call) new_border("cropping", 1L, args, call))
}

# Padding or cropping amounts as Keras takes them, as a matrix with one row
# per spatial axis and columns (before, after). 1D: one number or a pair
# (left, right). 2D: one number, a pair (one number per axis, on both
# sides) or a pair of pairs; each entry of a pair may itself be a number or
# a pair, as in Keras.
check_borders <- function(x, rank, arg, call) {
  is_amount <- function(v) is_whole(v) && length(v) %in% 1:2 && all(v >= 0)
  if (rank == 1L && is.list(x) && all(lengths(x) == 1)) x <- unlist(x)
  entries <- if (rank == 1L || (is.numeric(x) && length(x) == 1)) {
    rep(list(x), rank)
  } else if (length(x) == 2 && (is.numeric(x) || is.list(x))) {
    as.list(x)
  }
  valid <- length(entries) == rank && all(vapply(entries, is_amount, logical(1)))
  if (!valid) {
    expected <- if (rank == 1L) "a whole number >= 0 or a pair of them (left, right)" else
      paste("a whole number >= 0, a pair of them (rows, cols) or a list of two pairs",
            "(list(c(top, bottom), c(left, right)))")
    lcnn_abort(c("{.arg {arg}} must be {expected}.", x = "Got {format_value(x)}."),
               "argument", call = call)
  }
  matrix(unlist(lapply(entries, function(v) rep_len(as.integer(v), 2))), nrow = rank,
         byrow = TRUE, dimnames = list(NULL, c("before", "after")))
}

new_border <- function(kind, rank, args, call) {
  arg <- if (kind == "zero_padding") "padding" else "cropping"
  config <- list(
    rank = rank,
    amounts = check_borders(args[[arg]], rank, arg, call),
    # Keras's 1D layers have no data_format: their steps are axis 1.
    data_format = if (rank == 1L) "channels_last" else
      resolve_data_format(args$data_format, call = call)
  )
  type <- paste0(if (kind == "zero_padding") "ZeroPadding" else "Cropping", rank, "D")
  new_layer(kind, type, paste0(kind, rank, "d"), config, args, call = call)
}

# The plan of a padding (sign 1) or cropping (sign -1) layer: per-sample
# amounts `before` and `after` on every axis, 0 on the channels.
border_plan <- function(layer, input_shape, sign, call) {
  config <- layer$config
  check_input_rank(layer, input_shape, config$rank + 1L, call)
  spatial <- seq_len(config$rank) + if (config$data_format == "channels_first") 1L else 0L
  before <- after <- integer(length(input_shape))
  before[spatial] <- sign * config$amounts[, "before"]
  after[spatial] <- sign * config$amounts[, "after"]
  output_shape <- checked_output_shape(layer, input_shape,
                                       as.numeric(input_shape) + before + after, call)
  if (any(output_shape < 1)) {
    pairs <- paste0("(", config$amounts[, "before"], ", ", config$amounts[, "after"], ")",
                    collapse = ", ")
    lcnn_abort(c("Layer {.val {layer$name}} ({layer$type}) cannot crop input \\
                  {format_shape(input_shape)}.",
                 x = "{.arg cropping} (before, after) = {pairs} leaves output \\
                      {format_shape(output_shape)}.",
                 i = "Every axis must keep at least one entry."),
               "shape", call = call)
  }
  list(input_shape = input_shape, output_shape = output_shape, before = before, after = after,
       keras_shapes = list())
}

#' @export
layer_plan.lcnn_layer_zero_padding <- function(layer, input_shape, call) {
  border_plan(layer, input_shape, 1L, call)
}

#' @export
layer_plan.lcnn_layer_cropping <- function(layer, input_shape, call) {
  border_plan(layer, input_shape, -1L, call)
}

#' @export
layer_engine_spec.lcnn_layer_zero_padding <- function(layer) border_engine_spec(layer)

#' @export
layer_engine_spec.lcnn_layer_cropping <- function(layer) border_engine_spec(layer)

border_engine_spec <- function(layer) {
  list(type = "pad_crop", input_shape = layer$state$input_shape, before = layer$state$before,
       after = layer$state$after)
}

#' Reshape each sample
#'
#' Gives each sample the shape `target_shape`, as Keras's `Reshape`: the
#' values are read and written in C (row-major) order, as NumPy and Keras
#' hold them, so an R user gets exactly Keras's arrays (with the same
#' `dim()` and the same element at `a[b, i, j, ...]`). This is not R's
#' `dim<-`, which works in column-major order.
#'
#' @section Shape:
#' Input `(batch, ...)`; output `(batch, target_shape)`, with the `-1` entry
#' (if any) replaced by the length that keeps the number of values.
#'
#' @inheritParams layer_max_pooling_2d
#' @param target_shape The shape of one sample (without the batch): whole
#'   numbers >= 1, one of which may be `-1` (inferred).
#' @param name Layer name; `NULL` gives `"reshape"`, `"reshape_1"`, ...
#'   (see [k_clear_session()]).
#' @return See `object`.
#' @family layers
#' @export
#' @examples
#' x <- array(1:6, c(1, 6))
#' layer_reshape(x, c(2, 3))[1, , ] # rows filled first, as in Keras
#'
#' model <- keras_model_sequential(input_shape = 12) %>%
#'   layer_reshape(c(-1, 3))
#' model$output_shape
layer_reshape <- function(object, target_shape, input_shape = NULL, batch_input_shape = NULL,
                          batch_size = NULL, dtype = NULL, name = NULL, trainable = NULL,
                          weights = NULL) {
  layer_from_arguments(environment(), "target_shape", function(args, call) {
    target <- args$target_shape
    if (is.list(target) && all(lengths(target) == 1)) target <- unlist(target)
    if (!is_whole(target) || length(target) < 1 || any(target < 1 & target != -1) ||
        sum(target == -1) > 1) {
      lcnn_abort(c("{.arg target_shape} must be whole numbers >= 1, one of which may be -1.",
                   x = "Got {format_value(args$target_shape)}."),
                 "argument", call = call)
    }
    new_layer("reshape", "Reshape", "reshape",
              list(target_shape = as_checked_integer(target, "target_shape", call)), args,
              call = call)
  })
}

#' @export
layer_plan.lcnn_layer_reshape <- function(layer, input_shape, call) {
  target <- layer$config$target_shape
  size <- prod(as.numeric(input_shape))
  known <- prod(as.numeric(target[target != -1]))
  if (any(target == -1) && size %% known == 0) target[target == -1] <- size / known
  if (prod(as.numeric(target)) != size) {
    lcnn_abort(c("Layer {.val {layer$name}} ({layer$type}) cannot reshape input \\
                  {format_shape(input_shape)} to {.arg target_shape} \\
                  {format_value(layer$config$target_shape)}.",
                 x = "The input has {size} value{?s} per sample.",
                 i = "The target shape must hold as many values (a -1 entry is inferred)."),
               "shape", call = call)
  }
  list(input_shape = input_shape, output_shape = as.integer(target), keras_shapes = list())
}

#' @export
layer_engine_spec.lcnn_layer_reshape <- function(layer) {
  list(type = "reshape", input_shape = layer$state$input_shape,
       target_shape = layer$state$output_shape)
}

#' Permute the axes of each sample
#'
#' Reorders each sample's axes, as Keras's `Permute`: axis `a` of the output
#' is axis `dims[a]` of the input. Axes are counted from 1 without the
#' batch, as in Keras, so `dims = c(2, 1)` swaps the two axes of a
#' `(batch, steps, features)` input.
#'
#' @section Shape:
#' Input `(batch, d1, ..., dn)`; output `(batch, d[dims[1]], ...,
#' d[dims[n]])`.
#'
#' @inheritParams layer_max_pooling_2d
#' @param dims A permutation of `1:n`, n the number of axes of a sample.
#' @param name Layer name; `NULL` gives `"permute"`, `"permute_1"`, ...
#'   (see [k_clear_session()]).
#' @return See `object`.
#' @family layers
#' @export
#' @examples
#' x <- array(1:6, c(1, 2, 3))
#' y <- layer_permute(x, c(2, 1))
#' dim(y)
#' all.equal(y[1, , ], t(x[1, , ]))
layer_permute <- function(object, dims, input_shape = NULL, batch_input_shape = NULL,
                          batch_size = NULL, dtype = NULL, name = NULL, trainable = NULL,
                          weights = NULL) {
  layer_from_arguments(environment(), "dims", function(args, call) {
    dims <- args$dims
    if (is.list(dims) && all(lengths(dims) == 1)) dims <- unlist(dims)
    if (!is_whole(dims) || length(dims) < 1 || !setequal(dims, seq_along(dims)) ||
        anyDuplicated(dims)) {
      lcnn_abort(c("{.arg dims} must be a permutation of 1, ..., n (the axes of a sample, \\
                    counted from 1 without the batch).",
                   x = "Got {format_value(args$dims)}."),
                 "argument", call = call)
    }
    new_layer("permute", "Permute", "permute", list(dims = as.integer(dims)), args, call = call)
  })
}

#' @export
layer_plan.lcnn_layer_permute <- function(layer, input_shape, call) {
  dims <- layer$config$dims
  if (length(dims) != length(input_shape)) {
    lcnn_abort(c("Layer {.val {layer$name}} ({layer$type}) cannot permute input \\
                  {format_shape(input_shape)} with {.arg dims} {format_value(dims)}.",
                 x = "The input has {length(input_shape)} ax{?is/es} per sample, \\
                      {.arg dims} has {length(dims)}."),
               "shape", call = call)
  }
  list(input_shape = input_shape, output_shape = input_shape[dims], keras_shapes = list())
}

#' @export
layer_engine_spec.lcnn_layer_permute <- function(layer) {
  list(type = "permute", input_shape = layer$state$input_shape, dims = layer$config$dims)
}
