# The core layers that a first real model needs around locally connected
# ones: dense, flatten, activation and dropout.

#' Densely connected layer
#'
#' `output = activation(input %*% kernel + bias)` on the last axis of the
#' input, as Keras's `Dense`: a `(batch, ..., d)` input gives a
#' `(batch, ..., units)` output. The kernel has Keras's shape `(d, units)`.
#'
#' @section Shape:
#' Input `(batch, ..., d)`; output `(batch, ..., units)`.
#'
#' @inheritParams layer_locally_connected_2d
#' @param units Number of output units, a whole number >= 1.
#' @return See `object`.
#' @family layers
#' @export
#' @examples
#' model <- keras_model_sequential(input_shape = c(28, 28)) %>%
#'   layer_flatten() %>%
#'   layer_dense(units = 10, activation = "softmax")
#' model$output_shape
layer_dense <- function(object, units, activation = NULL, use_bias = TRUE,
                        kernel_initializer = "glorot_uniform", bias_initializer = "zeros",
                        kernel_regularizer = NULL, bias_regularizer = NULL,
                        activity_regularizer = NULL, kernel_constraint = NULL,
                        bias_constraint = NULL, input_shape = NULL, batch_input_shape = NULL,
                        batch_size = NULL, dtype = NULL, name = NULL, trainable = NULL,
                        weights = NULL) {
  layer_from_arguments(environment(), "units", function(args, call) {
    config <- c(list(units = check_count(args$units, arg = "units", call = call)),
                check_weighted_layer_arguments(args, call))
    new_layer("dense", "Dense", "dense", config, args, call = call)
  })
}

#' @export
layer_plan.lcnn_layer_dense <- function(layer, input_shape, call) {
  units <- layer$config$units
  keras_shapes <- list(kernel = c(input_shape[length(input_shape)], units))
  if (layer$config$use_bias) keras_shapes$bias <- units
  output_shape <- input_shape
  output_shape[length(output_shape)] <- units
  list(input_shape = input_shape, output_shape = as.integer(output_shape),
       keras_shapes = keras_shapes)
}

# Each weight drawn from the config's `<weight>_initializer`, in Keras's
# layout.
#' @export
layer_initial_weights.lcnn_layer_dense <- function(layer, state, dtype) {
  lapply(stats::setNames(nm = names(state$keras_shapes)), function(w) {
    dims <- state$keras_shapes[[w]]
    initial_values(layer$config[[paste0(w, "_initializer")]], dims, prod(dims), dtype)
  })
}

#' @export
layer_keras_weights.lcnn_layer_dense <- function(layer) {
  unname(Map(function(values, dims) array(values, dims), layer$weights, layer$state$keras_shapes))
}

#' @export
layer_import_weights.lcnn_layer_dense <- function(layer, weights, state, dtype, arg, call,
                                                   offset = 0) {
  check_weight_list(layer, weights, state$keras_shapes, dtype, arg, call, offset)
  stats::setNames(lapply(weights, function(w) .round_to_dtype(as.double(w), dtype)),
                  names(state$keras_shapes))
}

#' @export
layer_engine_layout.lcnn_layer_dense <- function(layer, weight, keras) as.double(keras)

#' @export
layer_engine_spec.lcnn_layer_dense <- function(layer) {
  list(type = "dense", input_shape = layer$state$input_shape, units = layer$config$units,
       activation = layer$config$activation, kernel = layer$weights$kernel,
       bias = layer$weights$bias %||% numeric())
}

#' Flatten the input
#'
#' Reshapes each sample to a vector in Keras's order: C (row-major) order of
#' the sample's axes, after moving the channels last when `data_format` is
#' `"channels_first"`. So `x[b, i, j, c]` of a `(batch, H, W, C)` input lands
#' at position `(i - 1) * W * C + (j - 1) * C + c`.
#'
#' @section Shape:
#' Input `(batch, ...)`; output `(batch, prod(...))`.
#'
#' @inheritParams layer_locally_connected_2d
#' @return See `object`.
#' @family layers
#' @export
#' @examples
#' layer_flatten(array(1:24, c(1, 2, 3, 4)))
layer_flatten <- function(object, data_format = NULL, input_shape = NULL, dtype = NULL,
                          name = NULL, trainable = NULL, weights = NULL, batch_size = NULL,
                          batch_input_shape = NULL) {
  layer_from_arguments(environment(), character(), function(args, call) {
    config <- list(data_format = resolve_data_format(args$data_format, call = call))
    new_layer("flatten", "Flatten", "flatten", config, args, call = call)
  })
}

#' @export
layer_plan.lcnn_layer_flatten <- function(layer, input_shape, call) {
  list(input_shape = input_shape,
       output_shape = checked_output_shape(layer, input_shape, prod(as.numeric(input_shape)),
                                           call),
       keras_shapes = list())
}

#' @export
layer_engine_spec.lcnn_layer_flatten <- function(layer) {
  list(type = "flatten", input_shape = layer$state$input_shape,
       channels_first = layer$config$data_format == "channels_first")
}

#' Apply an activation
#'
#' @section Shape:
#' Output shape = input shape.
#'
#' @inheritParams layer_locally_connected_2d
#' @param activation Name of the activation (see
#'   [layer_locally_connected_2d()]).
#' @return See `object`.
#' @family layers
#' @export
#' @examples
#' layer_activation(array(c(-1, 0, 2), c(1, 3)), "relu")
layer_activation <- function(object, activation, input_shape = NULL, batch_input_shape = NULL,
                             batch_size = NULL, dtype = NULL, name = NULL, trainable = NULL,
                             weights = NULL) {
  layer_from_arguments(environment(), "activation", function(args, call) {
    config <- list(activation = check_activation(args$activation, arg = "activation",
                                                 call = call))
    new_layer("activation", "Activation", "activation", config, args, call = call)
  })
}

#' @export
layer_plan.lcnn_layer_activation <- function(layer, input_shape, call) {
  list(input_shape = input_shape, output_shape = input_shape, keras_shapes = list())
}

#' @export
layer_engine_spec.lcnn_layer_activation <- function(layer) {
  list(type = "activation", input_shape = layer$state$input_shape,
       activation = layer$config$activation)
}

#' Dropout
#'
#' Keras's inverted dropout: while training, each input value is set to zero
#' with probability `rate` and the others are scaled by `1 / (1 - rate)`;
#' at prediction the layer passes its input through.
#'
#' @section Shape:
#' Output shape = input shape.
#'
#' @inheritParams layer_locally_connected_2d
#' @param rate Fraction of the inputs to drop, in `[0, 1)`.
#' @param noise_shape `NULL`, or the shape of the dropout mask with the batch
#'   first (`NULL`/`NA` for "as the input"); axes of size 1 share one mask
#'   value, as in Keras (e.g. `list(NULL, 1, 1, 16)` drops whole channels).
#' @param seed `NULL` or a whole number: fixes this layer's masks apart from
#'   R's random number generator.
#' @return See `object`.
#' @family layers
#' @export
#' @examples
#' model <- keras_model_sequential(input_shape = 10) %>%
#'   layer_dropout(rate = 0.5)
#' predict(model, matrix(1, 2, 10)) # identity at prediction
layer_dropout <- function(object, rate, noise_shape = NULL, seed = NULL, input_shape = NULL,
                          batch_input_shape = NULL, batch_size = NULL, dtype = NULL,
                          name = NULL, trainable = NULL, weights = NULL) {
  layer_from_arguments(environment(), "rate", function(args, call) {
    rate <- args$rate
    if (!is.numeric(rate) || length(rate) != 1 || is.na(rate) || rate < 0 || rate >= 1) {
      lcnn_abort(c("{.arg rate} must be a number in [0, 1).", x = "Got {format_value(rate)}."),
                 "argument", call = call)
    }
    noise <- check_noise_shape(args$noise_shape, call)
    seed <- if (is.null(args$seed)) NULL else check_count(args$seed, arg = "seed", min = 0,
                                                          call = call)
    config <- list(rate = as.numeric(rate), noise_shape = noise, seed = seed)
    new_layer("dropout", "Dropout", "dropout", config, args, call = call)
  })
}

# `noise_shape` as a numeric vector with NA for "as the input": each entry
# NULL, NA or one whole number >= 1, at least the batch and one axis.
check_noise_shape <- function(noise, call) {
  if (is.null(noise)) return(NULL)
  fits <- function(d) {
    is.null(d) || (length(d) == 1 && (is.logical(d) || is.numeric(d)) &&
                     (is.na(d) || (is_whole(d) && d >= 1)))
  }
  ok <- ((is.list(noise) && !is.object(noise)) || is.numeric(noise) || is.logical(noise)) &&
    length(noise) >= 2
  bad <- if (ok) which(!vapply(noise, fits, logical(1)))[1] else NA
  if (!ok || !is.na(bad)) {
    lcnn_abort(c("{.arg noise_shape} must be NULL or one whole number >= 1 (or NULL/NA) per \\
                  axis, batch first.",
                 x = if (ok) "{.arg noise_shape[[{bad}]]} is {format_value(noise[[bad]])}."
                     else "Got {format_value(noise)}."),
               "argument", call = call)
  }
  vapply(noise, function(d) if (is.null(d) || is.na(d)) NA_real_ else as.numeric(d), numeric(1))
}

#' @export
layer_plan.lcnn_layer_dropout <- function(layer, input_shape, call) {
  noise <- layer$config$noise_shape
  if (!is.null(noise)) {
    fits <- length(noise) == length(input_shape) + 1 &&
      all(is.na(noise[-1]) | noise[-1] == 1 | noise[-1] == input_shape)
    if (!fits) {
      lcnn_abort(c("{.arg noise_shape} of layer {.val {layer$name}} does not fit its input \\
                    {format_shape(input_shape)}.",
                   i = "Each entry after the batch must be NULL/NA, 1 or the input's size."),
                 "shape", call = call)
    }
  }
  list(input_shape = input_shape, output_shape = input_shape, keras_shapes = list())
}

#' @export
layer_engine_spec.lcnn_layer_dropout <- function(layer) {
  noise <- layer$config$noise_shape
  dims <- c(NA, layer$state$input_shape)
  shared <- if (is.null(noise)) rep(FALSE, length(dims)) else
    !is.na(noise) & noise == 1 & (is.na(dims) | dims != 1)
  list(type = "dropout", input_shape = layer$state$input_shape, rate = layer$config$rate,
       shared = shared, salt = layer$config$seed)
}

# Layers without weights.
#' @export
layer_initial_weights.lcnn_layer <- function(layer, state, dtype) list()

#' @export
layer_keras_weights.lcnn_layer <- function(layer) list()

#' @export
layer_import_weights.lcnn_layer <- function(layer, weights, state, dtype, arg, call,
                                             offset = 0) {
  check_weight_list(layer, weights, state$keras_shapes, dtype, arg, call, offset)
  list()
}
