#' Convolution layers
#'
#' `layer_conv_1d()` and `layer_conv_2d()` convolve the input with `filters`
#' kernels shared across positions, as Keras 2's `Conv1D` and `Conv2D`: the
#' same arguments, defaults, output shapes, weight layout and outputs,
#' including dilation, grouped convolutions and TensorFlow's `"same"`
#' padding. They are the weight-sharing counterparts of
#' [layer_locally_connected_2d()] and [layer_locally_connected_1d()].
#'
#' @section Shape:
#' Input, with `data_format = "channels_last"`: `(batch, rows, cols, channels)`
#' for 2D, `(batch, steps, channels)` for 1D; with `"channels_first"`:
#' `(batch, channels, rows, cols)` / `(batch, channels, steps)`.
#' Output: `(batch, new_rows, new_cols, filters)` / `(batch, new_steps,
#' filters)`, or `(batch, filters, new_rows, new_cols)` / `(batch, filters,
#' new_steps)` with `"channels_first"`. Along an axis of length `n`, with
#' kernel size `k`, stride `s`, dilation `d` and window span
#' `(k - 1) * d + 1`, the output length is `floor((n - span) / s) + 1` for
#' `"valid"` and `ceiling(n / s)` for `"same"` and `"causal"`.
#'
#' @section Padding:
#' `"same"` pads as TensorFlow does: `max((out - 1) * s + span - n, 0)` zeros
#' in all, half of them (rounded down) before the input and the rest after.
#' This is not the centred window of a locally connected layer's `"same"`;
#' the two agree for odd kernels with stride 1. `"causal"` (1D only) pads
#' `span - 1` zeros before, so output `t` depends only on inputs up to `t`.
#'
#' @section Weights:
#' [get_weights()] returns the kernel with Keras's shape
#' `(kernel_rows, kernel_cols, channels / groups, filters)` (1D:
#' `(kernel_size, channels / groups, filters)`) and the bias of length
#' `filters`. With `groups > 1`, filters `((g - 1) * filters / groups + 1)`
#' to `(g * filters / groups)` see only input channels
#' `((g - 1) * channels / groups + 1)` to `(g * channels / groups)`.
#'
#' @inheritParams layer_locally_connected_2d
#' @param kernel_size Window size: one whole number >= 1, or (2D) two.
#' @param strides Strides: one whole number >= 1, or (2D) two. Strides above
#'   1 cannot be combined with a dilation rate above 1.
#' @param padding `"valid"` or `"same"` (case-insensitive); 1D also
#'   `"causal"`.
#' @param data_format `"channels_last"`, `"channels_first"` or (2D) `NULL`
#'   for [k_image_data_format()]. The 1D default is `"channels_last"`, as
#'   in Keras.
#' @param dilation_rate Spacing between kernel taps: one whole number >= 1,
#'   or (2D) two.
#' @param groups Number of groups the input channels and the filters are
#'   split into; must divide both.
#' @param name Layer name; `NULL` gives `"conv2d"`, `"conv2d_1"`, ... (see
#'   [k_clear_session()]).
#' @param weights `NULL` or the list of initial weights (kernel, then bias)
#'   as [get_weights()] returns them.
#' @return See `object`.
#' @family layers
#' @export
#' @examples
#' model <- keras_model_sequential(input_shape = c(28, 28, 1)) %>%
#'   layer_conv_2d(filters = 8, kernel_size = c(3, 3), activation = "relu") %>%
#'   layer_conv_2d(filters = 8, kernel_size = 3, strides = 2, padding = "same",
#'                 groups = 2) %>%
#'   layer_flatten() %>%
#'   layer_dense(units = 10, activation = "softmax")
#' summary(model)
#'
#' # A dilated causal convolution applied to an array directly
#' x <- array(runif(2 * 16 * 3), dim = c(2, 16, 3))
#' y <- layer_conv_1d(x, filters = 4, kernel_size = 3, padding = "causal",
#'                    dilation_rate = 2)
#' dim(y)
layer_conv_2d <- function(object, filters, kernel_size, strides = c(1L, 1L), padding = "valid",
                          data_format = NULL, dilation_rate = c(1L, 1L), groups = 1L,
                          activation = NULL, use_bias = TRUE,
                          kernel_initializer = "glorot_uniform", bias_initializer = "zeros",
                          kernel_regularizer = NULL, bias_regularizer = NULL,
                          activity_regularizer = NULL, kernel_constraint = NULL,
                          bias_constraint = NULL, input_shape = NULL, batch_input_shape = NULL,
                          batch_size = NULL, dtype = NULL, name = NULL, trainable = NULL,
                          weights = NULL) {
  layer_from_arguments(environment(), c("filters", "kernel_size"),
                       function(args, call) new_conv(2L, args, call))
}

#' @rdname layer_conv_2d
#' @export
layer_conv_1d <- function(object, filters, kernel_size, strides = 1L, padding = "valid",
                          data_format = "channels_last", dilation_rate = 1L, groups = 1L,
                          activation = NULL, use_bias = TRUE,
                          kernel_initializer = "glorot_uniform", bias_initializer = "zeros",
                          kernel_regularizer = NULL, bias_regularizer = NULL,
                          activity_regularizer = NULL, kernel_constraint = NULL,
                          bias_constraint = NULL, input_shape = NULL, batch_input_shape = NULL,
                          batch_size = NULL, dtype = NULL, name = NULL, trainable = NULL,
                          weights = NULL) {
  layer_from_arguments(environment(), c("filters", "kernel_size"),
                       function(args, call) new_conv(1L, args, call))
}

new_conv <- function(rank, args, call) {
  paddings <- if (rank == 1L) c("valid", "same", "causal") else c("valid", "same")
  config <- c(list(
    rank = rank,
    filters = check_count(args$filters, arg = "filters", call = call),
    kernel_size = check_tuple(args$kernel_size, rank, arg = "kernel_size", call = call),
    strides = check_tuple(args$strides, rank, arg = "strides", call = call),
    padding = check_choice(args$padding, paddings, arg = "padding", call = call),
    data_format = resolve_data_format(args$data_format, call = call),
    dilation_rate = check_tuple(args$dilation_rate, rank, arg = "dilation_rate", call = call),
    groups = check_count(args$groups, arg = "groups", call = call)
  ), check_weighted_layer_arguments(args, call))
  if (any(config$strides > 1) && any(config$dilation_rate > 1)) {
    lcnn_abort(c("{.arg strides} > 1 cannot be combined with {.arg dilation_rate} > 1.",
                 x = "Got strides {format_value(config$strides)} and dilation_rate \\
                      {format_value(config$dilation_rate)}."),
               "argument", call = call)
  }
  if (config$filters %% config$groups != 0) {
    lcnn_abort(c("{.arg filters} must be divisible by {.arg groups}.",
                 x = "Got filters = {config$filters} and groups = {config$groups}."),
               "argument", call = call)
  }
  layer <- new_layer("conv", paste0("Conv", rank, "D"), paste0("conv", rank, "d"), config, args,
                     call = call)
  if (!is.null(layer$input$shape) && length(layer$input$shape) != rank + 1L) {
    lcnn_abort(c("{.arg input_shape} of a {rank}D convolution layer must have \\
                  {rank + 1} dimensions (without the batch).",
                 x = "Got {format_shape(layer$input$shape)}."),
               "argument", call = call)
  }
  layer
}

# The geometry list the engine reads (src/rcpp_convert.cpp): the locally
# connected one with dilation and groups.
conv_geometry <- function(config, input_shape) {
  geometry <- lc_geometry(config, input_shape)
  geometry$dilation <- if (geometry$one_d) c(config$dilation_rate, 1) else config$dilation_rate
  geometry$groups <- config$groups
  geometry
}

#' @export
layer_plan.lcnn_layer_conv <- function(layer, input_shape, call) {
  config <- layer$config
  if (length(input_shape) != config$rank + 1L) {
    lcnn_abort(c("Layer {.val {layer$name}} ({layer$type}) needs input with \\
                  {config$rank + 1} dimensions per sample.",
                 x = "Got input {format_shape(input_shape)}."),
               "shape", call = call)
  }
  geometry <- conv_geometry(config, input_shape)
  if (geometry$channels %% config$groups != 0) {
    lcnn_abort(c("Layer {.val {layer$name}} ({layer$type}) has {config$groups} groups, which \\
                  must divide the {geometry$channels} channels of its input \\
                  {format_shape(input_shape)}."),
               "shape", call = call)
  }
  out <- .conv_output_dims(geometry)[seq_len(config$rank)]
  output_shape <- if (config$data_format == "channels_last") {
    c(out, config$filters)
  } else {
    c(config$filters, out)
  }
  if (any(out < 1)) {
    lcnn_abort(c("Layer {.val {layer$name}} ({layer$type}) cannot be applied to input \\
                  {format_shape(input_shape)}.",
                 x = "kernel_size {format_value(config$kernel_size)} with strides \\
                      {format_value(config$strides)}, dilation_rate \\
                      {format_value(config$dilation_rate)} and padding {.val {config$padding}} \\
                      give output {format_shape(output_shape)}.",
                 i = "Every output size must be >= 1: use a smaller kernel or \\
                      padding = \"same\"."),
               "shape", call = call)
  }
  keras_shapes <- list(kernel = c(config$kernel_size, geometry$channels %/% config$groups,
                                  config$filters))
  if (config$use_bias) keras_shapes$bias <- config$filters
  list(input_shape = as.integer(input_shape), output_shape = as.integer(output_shape),
       geometry = geometry, keras_shapes = lapply(keras_shapes, as.integer))
}

# The engine holds convolution weights in Keras's layout, as it holds dense
# weights, so these are the dense layer's methods.

#' @export
layer_initial_weights.lcnn_layer_conv <- function(layer, state, dtype) {
  layer_initial_weights.lcnn_layer_dense(layer, state, dtype)
}

#' @export
layer_keras_weights.lcnn_layer_conv <- function(layer) layer_keras_weights.lcnn_layer_dense(layer)

#' @export
layer_import_weights.lcnn_layer_conv <- function(layer, weights, state, dtype, arg, call,
                                                  offset = 0) {
  layer_import_weights.lcnn_layer_dense(layer, weights, state, dtype, arg, call, offset)
}

#' @export
layer_engine_layout.lcnn_layer_conv <- function(layer, weight, keras) {
  layer_engine_layout.lcnn_layer_dense(layer, weight, keras)
}

#' @export
layer_engine_spec.lcnn_layer_conv <- function(layer) {
  list(type = "conv", geometry = layer$state$geometry, activation = layer$config$activation,
       kernel = layer$weights$kernel, bias = layer$weights$bias %||% numeric())
}
