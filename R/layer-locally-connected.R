#' Locally connected layers
#'
#' `layer_locally_connected_1d()` and `layer_locally_connected_2d()` work like
#' `layer_conv_1d()`/`layer_conv_2d()` except that weights are not shared: every
#' output position has its own filters. The arguments, defaults, output
#' shapes, weight layouts and outputs are those of Keras 2's
#' `LocallyConnected1D` and `LocallyConnected2D`, so weights saved from Keras
#' load with [set_weights()] and give Keras's outputs.
#'
#' @section Shape:
#' Input, with `data_format = "channels_last"`: `(batch, rows, cols, channels)`
#' for 2D, `(batch, steps, channels)` for 1D; with `"channels_first"`:
#' `(batch, channels, rows, cols)` / `(batch, channels, steps)`.
#' Output: `(batch, new_rows, new_cols, filters)` / `(batch, new_steps,
#' filters)`, or `(batch, filters, new_rows, new_cols)` / `(batch, filters,
#' new_steps)` with `"channels_first"`, where along each axis of length `n`
#' the output length is `floor((n - k) / s) + 1` for `"valid"` and
#' `ceiling(n / s)` for `"same"` and `"causal"`.
#'
#' @section Padding:
#' With `"valid"`, output `r` reads inputs `[r * s, r * s + k)` (0-based).
#' With `"same"`, it reads `[r * s - floor(k / 2), r * s - floor(k / 2) + k)`
#' clipped to the input: taps outside have no weight, as if the input were
#' zero-padded. This is Keras's locally connected "same", which differs from
#' a convolution's "same" for even kernels or strides > 1. `"causal"` (1D
#' only) reads `[r * s - k + 1, r * s + 1)`. Unlike Keras, lcnn allows
#' `"same"` with `implementation = 1` (Keras refuses it) and adds `"causal"`.
#'
#' @section Implementations and weights:
#' In Keras, `implementation` picks an algorithm and, with it, the layout of
#' the kernel returned by [get_weights()]. In lcnn the computation is always
#' the engine's own (the outputs are identical for all three), and
#' `implementation` picks only the layout and the initializer's fans:
#' * `1`: kernel of shape `(P, K * C, F)` (P output positions, K kernel taps,
#'   C channels, F filters); with `"same"`/`"causal"` every window is full
#'   size and the entries of taps outside the input are ignored.
#' * `2`: a dense kernel of shape `(rows, cols, C, new_rows, new_cols, F)`
#'   (`(C, rows, cols, F, new_rows, new_cols)` with `"channels_first"`; 1D
#'   drops the column axes). Only the entries inside each window are used;
#'   the others are ignored on [set_weights()] and read back as zero. They
#'   count in [count_params()], as in Keras.
#' * `3`: a vector of the connected weights in Keras's order.
#'
#' The bias has shape `(new_rows, new_cols, F)` (`(new_steps, F)` in 1D) for
#' every implementation. With `"channels_first"`, Keras adds it to the output
#' by reshaping it to `(F, new_rows, new_cols)` rather than transposing it;
#' lcnn does the same, so Keras weights give Keras's outputs.
#'
#' @param object What to compose the layer with: missing (the layer is
#'   returned), a sequential model (the layer is added to it in place and the
#'   model returned invisibly) or a numeric array (the layer is applied to it
#'   and the result returned as an array).
#' @param filters Number of output filters, a whole number >= 1.
#' @param kernel_size Window size: one whole number >= 1, or (2D) two.
#' @param strides Strides: one whole number >= 1, or (2D) two.
#' @param padding `"valid"` or `"same"` (case-insensitive); 1D also
#'   `"causal"`.
#' @param data_format `"channels_last"`, `"channels_first"` or `NULL` for
#'   [k_image_data_format()].
#' @param activation Name of the activation (`NULL` is `"linear"`): one of
#'   linear, relu, sigmoid, tanh, softmax (over the last axis, as in Keras),
#'   elu, selu, softplus, softsign, swish (or silu), gelu, hard_sigmoid
#'   (Keras 2's `0.2 * x + 0.5`, clipped) and exponential.
#' @param use_bias Whether the layer has a bias.
#' @param kernel_initializer,bias_initializer An initializer name or
#'   [initializers] object.
#' @param kernel_regularizer,bias_regularizer,activity_regularizer `NULL` or a
#'   [regularizers] object; stored with the layer, applied in training.
#' @param kernel_constraint,bias_constraint `NULL` or a [constraints] object;
#'   stored with the layer, applied in training.
#' @param implementation 1, 2 or 3: the Keras weight layout (see above).
#' @param batch_size Fixed batch size, or `NULL`.
#' @param name Layer name; `NULL` gives `"locally_connected2d"`,
#'   `"locally_connected2d_1"`, ... (see [k_clear_session()]).
#' @param trainable Whether training updates the weights (`NULL` is `TRUE`).
#' @param weights `NULL` or the list of initial weights in the layout of
#'   `implementation`, as [get_weights()] returns them.
#' @param input_shape Shape of one sample (without the batch), for the
#'   first layer of a model.
#' @param batch_input_shape The same with the batch size in front
#'   (`NULL`/`NA` for any).
#' @param dtype `"float32"` (the default) or `"float64"`: the precision the
#'   engine computes in.
#' @return See `object`.
#' @family layers
#' @export
#' @examples
#' model <- keras_model_sequential(input_shape = c(32, 32, 3)) %>%
#'   layer_locally_connected_2d(filters = 64, kernel_size = c(3, 3)) %>%
#'   layer_locally_connected_2d(filters = 32, kernel_size = c(3, 3))
#' model$output_shape
#' summary(model)
#'
#' x <- array(runif(2 * 32 * 32 * 3), dim = c(2, 32, 32, 3))
#' dim(predict(model, x))
#'
#' # Applied to an array directly
#' y <- layer_locally_connected_1d(array(1, c(4, 10, 2)), filters = 3, kernel_size = 3)
#' dim(y)
layer_locally_connected_2d <- function(object, filters, kernel_size, strides = c(1L, 1L),
                                       padding = "valid", data_format = NULL,
                                       activation = NULL, use_bias = TRUE,
                                       kernel_initializer = "glorot_uniform",
                                       bias_initializer = "zeros", kernel_regularizer = NULL,
                                       bias_regularizer = NULL, activity_regularizer = NULL,
                                       kernel_constraint = NULL, bias_constraint = NULL,
                                       implementation = 1L, batch_size = NULL, name = NULL,
                                       trainable = NULL, weights = NULL, input_shape = NULL,
                                       batch_input_shape = NULL, dtype = NULL) {
  layer_from_arguments(environment(), c("filters", "kernel_size"),
                       function(args, call) new_locally_connected(2L, args, call))
}

#' @rdname layer_locally_connected_2d
#' @export
layer_locally_connected_1d <- function(object, filters, kernel_size, strides = 1L,
                                       padding = "valid", data_format = NULL,
                                       activation = NULL, use_bias = TRUE,
                                       kernel_initializer = "glorot_uniform",
                                       bias_initializer = "zeros", kernel_regularizer = NULL,
                                       bias_regularizer = NULL, activity_regularizer = NULL,
                                       kernel_constraint = NULL, bias_constraint = NULL,
                                       implementation = 1L, batch_size = NULL, name = NULL,
                                       trainable = NULL, weights = NULL, input_shape = NULL,
                                       batch_input_shape = NULL, dtype = NULL) {
  layer_from_arguments(environment(), c("filters", "kernel_size"),
                       function(args, call) new_locally_connected(1L, args, call))
}

new_locally_connected <- function(rank, args, call) {
  paddings <- if (rank == 1L) c("valid", "same", "causal") else c("valid", "same")
  implementation <- args$implementation
  if (!is_whole(implementation) || length(implementation) != 1 ||
      !(implementation %in% 1:3)) {
    lcnn_abort(c("{.arg implementation} must be 1, 2 or 3.",
                 x = "Got {format_value(implementation)}."),
               "argument", call = call)
  }
  config <- c(list(
    rank = rank,
    filters = check_count(args$filters, arg = "filters", call = call),
    kernel_size = check_tuple(args$kernel_size, rank, arg = "kernel_size", call = call),
    strides = check_tuple(args$strides, rank, arg = "strides", call = call),
    padding = check_choice(args$padding, paddings, arg = "padding", call = call),
    data_format = resolve_data_format(args$data_format, call = call),
    implementation = as.integer(implementation)
  ), check_weighted_layer_arguments(args, call))
  layer <- new_layer("locally_connected", paste0("LocallyConnected", rank, "D"),
                     paste0("locally_connected", rank, "d"), config, args, call = call)
  if (!is.null(layer$input$shape) && length(layer$input$shape) != rank + 1L) {
    lcnn_abort(c("{.arg input_shape} of a {rank}D locally connected layer must have \\
                  {rank + 1} dimensions (without the batch).",
                 x = "Got {format_shape(layer$input$shape)}."),
               "argument", call = call)
  }
  layer
}

# The geometry list the engine reads (src/rcpp_convert.cpp): windows of
# `kernel_size` and `strides` over the `rank` spatial axes of per-sample
# input `input_shape`. `filters = NULL` keeps one output channel per input
# channel (pooling); `same_padding` says where "same" puts the windows:
# "locally_connected" (kernel centred) or "convolution" (TensorFlow's).
window_geometry <- function(rank, input_shape, kernel_size, strides, padding, data_format,
                            filters = NULL, same_padding = "locally_connected") {
  parts <- split_channels(input_shape, data_format)
  spatial <- parts$spatial
  one_d <- rank == 1L
  list(
    rows = c(spatial[1], kernel_size[1], strides[1]),
    cols = if (one_d) c(1, 1, 1) else c(spatial[2], kernel_size[2], strides[2]),
    padding = padding,
    same_padding = same_padding,
    channels = parts$channels,
    filters = filters %||% parts$channels,
    data_format = data_format,
    one_d = one_d
  )
}

# A per-sample shape of `data_format` as its spatial dims and channel count,
# and back.
split_channels <- function(input_shape, data_format) {
  if (data_format == "channels_last") {
    list(spatial = input_shape[-length(input_shape)], channels = input_shape[length(input_shape)])
  } else {
    list(spatial = input_shape[-1], channels = input_shape[1])
  }
}

with_channels <- function(spatial, channels, data_format) {
  if (data_format == "channels_last") c(spatial, channels) else c(channels, spatial)
}

lc_geometry <- function(config, input_shape) {
  window_geometry(config$rank, input_shape, config$kernel_size, config$strides, config$padding,
                  config$data_format, filters = config$filters)
}

#' @export
layer_plan.lcnn_layer_locally_connected <- function(layer, input_shape, call) {
  config <- layer$config
  check_input_rank(layer, input_shape, config$rank + 1L, call)
  geometry <- lc_geometry(config, input_shape)
  out <- .lc_output_dims(geometry)[seq_len(config$rank)]
  output_shape <- with_channels(out, config$filters, config$data_format)
  if (any(out < 1)) {
    kernel <- format_value(config$kernel_size)
    lcnn_abort(c("Layer {.val {layer$name}} ({layer$type}) cannot be applied to input \\
                  {format_shape(input_shape)}.",
                 x = "kernel_size {kernel} with strides {format_value(config$strides)} and \\
                      padding {.val {config$padding}} give output {format_shape(output_shape)}.",
                 i = "Every output size must be >= 1: use a smaller kernel or \\
                      padding = \"same\"."),
               "shape", call = call)
  }
  shapes <- .lc_weight_shapes(geometry, config$implementation)
  keras_shapes <- list(kernel = shapes$kernel)
  if (config$use_bias) keras_shapes$bias <- shapes$bias
  list(input_shape = as.integer(input_shape), output_shape = as.integer(output_shape),
       geometry = geometry, keras_shapes = keras_shapes,
       sizes = c(kernel = shapes$kernel_size, bias = shapes$bias_size))
}

#' @export
layer_initial_weights.lcnn_layer_locally_connected <- function(layer, state, dtype) {
  config <- layer$config
  weights <- list(kernel = initial_values(config$kernel_initializer, state$keras_shapes$kernel,
                                          state$sizes[["kernel"]], dtype, state$geometry))
  if (config$use_bias) {
    weights$bias <- initial_values(config$bias_initializer, state$keras_shapes$bias,
                                   state$sizes[["bias"]], dtype)
  }
  weights
}

#' @export
layer_keras_weights.lcnn_layer_locally_connected <- function(layer) {
  state <- layer$state
  out <- list(.lc_kernel_to_keras(state$geometry, layer$config$implementation,
                                  layer$weights$kernel))
  if (layer$config$use_bias) out[[2]] <- .lc_bias_to_keras(state$geometry, layer$weights$bias)
  out
}

#' @export
layer_import_weights.lcnn_layer_locally_connected <- function(layer, weights, state, dtype,
                                                               arg, call, offset = 0) {
  check_weight_list(layer, weights, state$keras_shapes, dtype, arg, call, offset)
  geometry <- state$geometry
  out <- list(kernel = .lc_kernel_from_keras(geometry, layer$config$implementation,
                                             as.double(weights[[1]]), dtype))
  if (layer$config$use_bias) {
    out$bias <- .lc_bias_from_keras(geometry, as.double(weights[[2]]), dtype)
  }
  out
}

#' @export
layer_engine_layout.lcnn_layer_locally_connected <- function(layer, weight, keras) {
  geometry <- layer$state$geometry
  if (weight == "kernel") {
    .lc_kernel_from_keras(geometry, layer$config$implementation, as.double(keras), "float64")
  } else {
    .lc_bias_from_keras(geometry, as.double(keras), "float64")
  }
}

#' @export
layer_engine_spec.lcnn_layer_locally_connected <- function(layer) {
  list(type = "locally_connected", geometry = layer$state$geometry,
       activation = layer$config$activation, kernel = layer$weights$kernel,
       bias = layer$weights$bias %||% numeric())
}
