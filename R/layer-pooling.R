# Pooling layers: max and average pooling over windows (1D, 2D) and over
# the whole of each channel (global pooling). They have no weights; the
# engine's Pooling layer (src/engine/pooling.*) computes them on the
# window geometry of the locally connected layers, with TensorFlow's "same".

#' Max and average pooling
#'
#' Downsample each channel to the maximum (`layer_max_pooling_*()`) or the
#' mean (`layer_average_pooling_*()`) of every window of `pool_size` taken
#' every `strides` steps, as Keras's `MaxPooling1D`, `MaxPooling2D`,
#' `AveragePooling1D` and `AveragePooling2D`.
#'
#' @section Shape:
#' Input, with `data_format = "channels_last"`: `(batch, steps, channels)` for
#' 1D, `(batch, rows, cols, channels)` for 2D; with `"channels_first"`:
#' `(batch, channels, steps)` / `(batch, channels, rows, cols)`. Output: the
#' same with each spatial length `n` replaced by `floor((n - k) / s) + 1` for
#' `"valid"` and `ceiling(n / s)` for `"same"` (`k` the pool size and `s`
#' the stride along that axis).
#'
#' @section Padding:
#' With `"valid"`, output `r` pools inputs `[r * s, r * s + k)` (0-based).
#' With `"same"`, the input is padded by `max((out - 1) * s + k - n, 0)` in
#' all, the smaller half before: TensorFlow's rule, which differs from the
#' locally connected layers' `"same"`. Padded entries take no part: the
#' average is over the entries inside the input only, and the maximum
#' ignores the padding. In training, the gradient of a maximum goes to the
#' first maximal entry of its window in row-major order, as in TensorFlow.
#'
#' @inheritParams layer_locally_connected_2d
#' @param pool_size Window size: one whole number >= 1, or (2D) two.
#' @param strides Step between windows: `NULL` (the default) for
#'   `pool_size`, else one whole number >= 1, or (2D) two.
#' @param padding `"valid"` or `"same"` (case-insensitive).
#' @param data_format `"channels_last"`, `"channels_first"` or `NULL` for
#'   [k_image_data_format()].
#' @param name Layer name; `NULL` gives Keras's automatic name
#'   (`"max_pooling2d"`, `"max_pooling2d_1"`, ...; see [k_clear_session()]).
#' @param weights `NULL` or an empty list: the layer has no weights.
#' @return See `object`.
#' @family layers
#' @export
#' @examples
#' x <- array(1:16, c(1, 4, 4, 1))
#' layer_max_pooling_2d(x)[1, , , 1]
#' layer_average_pooling_2d(x, pool_size = 3, strides = 1, padding = "same")[1, , , 1]
#'
#' model <- keras_model_sequential(input_shape = c(12, 3)) %>%
#'   layer_max_pooling_1d(pool_size = 3) %>%
#'   layer_average_pooling_1d(padding = "same")
#' model$output_shape
layer_max_pooling_2d <- function(object, pool_size = c(2L, 2L), strides = NULL,
                                 padding = "valid", data_format = NULL, input_shape = NULL,
                                 batch_input_shape = NULL, batch_size = NULL, dtype = NULL,
                                 name = NULL, trainable = NULL, weights = NULL) {
  layer_from_arguments(environment(), character(),
                       function(args, call) new_pooling("max", 2L, args, call))
}

#' @rdname layer_max_pooling_2d
#' @export
layer_average_pooling_2d <- function(object, pool_size = c(2L, 2L), strides = NULL,
                                     padding = "valid", data_format = NULL, input_shape = NULL,
                                     batch_input_shape = NULL, batch_size = NULL, dtype = NULL,
                                     name = NULL, trainable = NULL, weights = NULL) {
  layer_from_arguments(environment(), character(),
                       function(args, call) new_pooling("average", 2L, args, call))
}

#' @rdname layer_max_pooling_2d
#' @export
layer_max_pooling_1d <- function(object, pool_size = 2L, strides = NULL, padding = "valid",
                                 data_format = "channels_last", input_shape = NULL,
                                 batch_input_shape = NULL, batch_size = NULL, dtype = NULL,
                                 name = NULL, trainable = NULL, weights = NULL) {
  layer_from_arguments(environment(), character(),
                       function(args, call) new_pooling("max", 1L, args, call))
}

#' @rdname layer_max_pooling_2d
#' @export
layer_average_pooling_1d <- function(object, pool_size = 2L, strides = NULL, padding = "valid",
                                     data_format = "channels_last", input_shape = NULL,
                                     batch_input_shape = NULL, batch_size = NULL, dtype = NULL,
                                     name = NULL, trainable = NULL, weights = NULL) {
  layer_from_arguments(environment(), character(),
                       function(args, call) new_pooling("average", 1L, args, call))
}

# Keras's class names and automatic name prefixes of the pooling layers.
pooling_type <- function(mode, rank, global = FALSE) {
  type <- paste0(if (global) "Global", if (mode == "max") "MaxPooling" else "AveragePooling",
                 rank, "D")
  prefix <- paste0(if (global) "global_", mode, "_pooling", rank, "d")
  list(type = type, prefix = prefix)
}

new_pooling <- function(mode, rank, args, call) {
  pool_size <- check_tuple(args$pool_size, rank, arg = "pool_size", call = call)
  config <- list(
    mode = mode,
    rank = rank,
    pool_size = pool_size,
    strides = if (is.null(args$strides)) pool_size else
      check_tuple(args$strides, rank, arg = "strides", call = call),
    padding = check_choice(args$padding, c("valid", "same"), arg = "padding", call = call),
    data_format = resolve_data_format(args$data_format, call = call)
  )
  names <- pooling_type(mode, rank)
  new_layer("pooling", names$type, names$prefix, config, args, call = call)
}

#' @export
layer_plan.lcnn_layer_pooling <- function(layer, input_shape, call) {
  config <- layer$config
  check_input_rank(layer, input_shape, config$rank + 1L, call)
  geometry <- window_geometry(config$rank, input_shape, config$pool_size, config$strides,
                              config$padding, config$data_format, same_padding = "convolution")
  out <- .lc_output_dims(geometry)[seq_len(config$rank)]
  output_shape <- with_channels(out, geometry$channels, config$data_format)
  if (any(out < 1)) {
    lcnn_abort(c("Layer {.val {layer$name}} ({layer$type}) cannot be applied to input \\
                  {format_shape(input_shape)}.",
                 x = "pool_size {format_value(config$pool_size)} with strides \\
                      {format_value(config$strides)} and padding {.val {config$padding}} give \\
                      output {format_shape(output_shape)}.",
                 i = "Every output size must be >= 1: use a smaller pool_size or \\
                      padding = \"same\"."),
               "shape", call = call)
  }
  list(input_shape = input_shape, output_shape = as.integer(output_shape),
       geometry = geometry, keras_shapes = list())
}

#' @export
layer_engine_spec.lcnn_layer_pooling <- function(layer) pooling_engine_spec(layer, "first")

# `max_ties`: TensorFlow's max pooling gives the gradient of a maximum held
# by several entries to the first of them ("first"); the reduce_max of
# Keras's global max pooling splits it evenly among them ("split").
pooling_engine_spec <- function(layer, max_ties) {
  list(type = "pooling", geometry = layer$state$geometry, mode = layer$config$mode,
       output_shape = layer$state$output_shape, max_ties = max_ties)
}

#' Global max and average pooling
#'
#' The maximum (`layer_global_max_pooling_*()`) or the mean
#' (`layer_global_average_pooling_*()`) of each channel over all its steps
#' (1D) or all its rows and columns (2D), as Keras's `GlobalMaxPooling1D`,
#' `GlobalMaxPooling2D`, `GlobalAveragePooling1D` and
#' `GlobalAveragePooling2D`. In training, the gradient of a maximum held by
#' several entries is split evenly among them, as TensorFlow's `reduce_max`
#' (which Keras uses here) does; unlike [layer_max_pooling_2d()], which gives
#' it to the first of them.
#'
#' @section Shape:
#' Input as for [layer_max_pooling_2d()]. Output `(batch, channels)`; with
#' `keepdims = TRUE` the spatial axes stay with length 1:
#' `(batch, 1, channels)` / `(batch, 1, 1, channels)`, or
#' `(batch, channels, 1)` / `(batch, channels, 1, 1)` with
#' `"channels_first"`.
#'
#' @inheritParams layer_max_pooling_2d
#' @param keepdims Whether to keep the spatial axes with length 1.
#' @param name Layer name; `NULL` gives Keras's automatic name
#'   (`"global_max_pooling2d"`, ...; see [k_clear_session()]).
#' @return See `object`.
#' @family layers
#' @export
#' @examples
#' x <- array(c(1, 5, 2, 0, 3, 4), c(1, 3, 2))
#' layer_global_max_pooling_1d(x)
#' layer_global_average_pooling_1d(x, keepdims = TRUE)
#'
#' model <- keras_model_sequential(input_shape = c(8, 8, 3)) %>%
#'   layer_global_average_pooling_2d()
#' model$output_shape
layer_global_max_pooling_2d <- function(object, data_format = NULL, keepdims = FALSE,
                                        input_shape = NULL, batch_input_shape = NULL,
                                        batch_size = NULL, dtype = NULL, name = NULL,
                                        trainable = NULL, weights = NULL) {
  layer_from_arguments(environment(), character(),
                       function(args, call) new_global_pooling("max", 2L, args, call))
}

#' @rdname layer_global_max_pooling_2d
#' @export
layer_global_average_pooling_2d <- function(object, data_format = NULL, keepdims = FALSE,
                                            input_shape = NULL, batch_input_shape = NULL,
                                            batch_size = NULL, dtype = NULL, name = NULL,
                                            trainable = NULL, weights = NULL) {
  layer_from_arguments(environment(), character(),
                       function(args, call) new_global_pooling("average", 2L, args, call))
}

#' @rdname layer_global_max_pooling_2d
#' @export
layer_global_max_pooling_1d <- function(object, data_format = "channels_last", keepdims = FALSE,
                                        input_shape = NULL, batch_input_shape = NULL,
                                        batch_size = NULL, dtype = NULL, name = NULL,
                                        trainable = NULL, weights = NULL) {
  layer_from_arguments(environment(), character(),
                       function(args, call) new_global_pooling("max", 1L, args, call))
}

#' @rdname layer_global_max_pooling_2d
#' @export
layer_global_average_pooling_1d <- function(object, data_format = "channels_last",
                                            keepdims = FALSE, input_shape = NULL,
                                            batch_input_shape = NULL, batch_size = NULL,
                                            dtype = NULL, name = NULL, trainable = NULL,
                                            weights = NULL) {
  layer_from_arguments(environment(), character(),
                       function(args, call) new_global_pooling("average", 1L, args, call))
}

new_global_pooling <- function(mode, rank, args, call) {
  config <- list(
    mode = mode,
    rank = rank,
    data_format = resolve_data_format(args$data_format, call = call),
    keepdims = check_flag(args$keepdims, arg = "keepdims", call = call)
  )
  names <- pooling_type(mode, rank, global = TRUE)
  new_layer("global_pooling", names$type, names$prefix, config, args, call = call)
}

# One window covering every position: a single output position.
#' @export
layer_plan.lcnn_layer_global_pooling <- function(layer, input_shape, call) {
  config <- layer$config
  check_input_rank(layer, input_shape, config$rank + 1L, call)
  parts <- split_channels(input_shape, config$data_format)
  geometry <- window_geometry(config$rank, input_shape, parts$spatial, rep(1L, config$rank),
                              "valid", config$data_format, same_padding = "convolution")
  output_shape <- if (config$keepdims) {
    with_channels(rep(1L, config$rank), parts$channels, config$data_format)
  } else {
    parts$channels
  }
  list(input_shape = input_shape, output_shape = as.integer(output_shape),
       geometry = geometry, keras_shapes = list())
}

#' @export
layer_engine_spec.lcnn_layer_global_pooling <- function(layer) {
  pooling_engine_spec(layer, "split")
}
