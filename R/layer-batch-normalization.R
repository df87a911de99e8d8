# Batch normalization, as Keras 2's BatchNormalization: batch statistics in
# training, moving statistics at inference, and moving statistics that are
# weights the layer updates itself rather than the optimizer.

#' Batch normalization
#'
#' Normalizes each channel of `axis` as Keras 2's `BatchNormalization`:
#' `gamma * (x - mean) / sqrt(variance + epsilon) + beta`, per channel.
#'
#' * **Training** (inside [fit()]): `mean` and `variance` are the batch's
#'   mean and biased variance over every axis but `axis`, and the gradient
#'   runs through them. Each batch also updates the moving statistics:
#'   `moving_mean <- moving_mean * momentum + mean * (1 - momentum)`, and
#'   the same for `moving_variance`.
#' * **Inference** ([predict()], [evaluate()], validation in [fit()] and a
#'   layer applied to an array): `mean` and `variance` are the moving
#'   statistics.
#' * **Frozen** (`trainable = FALSE`, or [freeze_weights()] before
#'   [compile()]): the layer runs in inference mode even inside [fit()] and
#'   its moving statistics stay as they are, as in TF2 Keras.
#'
#' The moving statistics are weights, so [get_weights()], [set_weights()]
#' and [saveRDS()] see them, but they never train: [summary()] counts them
#' as non-trainable and the optimizer does not touch them.
#'
#' Which batch variance feeds `moving_variance` follows tf-keras.
#' For float32 layers with a 4D or 5D input (batch included) normalized on
#' axis 1 or the last axis, Keras runs TensorFlow's fused kernel, which
#' moves towards the *unbiased* variance `variance * n / (n - 1)` (`n`
#' values per channel); every other case (2D and 3D inputs, other axes,
#' float64, `synchronized = TRUE`) moves towards the biased variance. The
#' output is always normalized with the biased variance.
#'
#' @section Shape:
#' Any input `(batch, ...)`; the output has the input's shape. The weights
#' `gamma` (if `scale`), `beta` (if `center`), `moving_mean` and
#' `moving_variance`, in that order, each have shape `(C)`, `C` the length of
#' `axis`.
#'
#' @inheritParams layer_locally_connected_2d
#' @param axis The axis to normalize, as in Keras: 0 is the batch axis (not
#'   allowed), 1 the first axis of a sample, and negative values count from
#'   the end (`-1`, the default, is the last axis: the channels of
#'   channels_last images, the features of a dense layer's output). Use
#'   `axis = 1` after a `channels_first` layer. R keras passes `axis` to
#'   Keras unchanged, so the same numbers work in both.
#' @param momentum Momentum of the moving statistics, in `[0, 1]`.
#' @param epsilon Small number added to the variance, `> 0`.
#' @param center Whether to add the offset `beta`.
#' @param scale Whether to multiply by `gamma`.
#' @param beta_initializer,gamma_initializer,moving_mean_initializer,moving_variance_initializer
#'   An initializer name or [initializers] object.
#' @param beta_regularizer,gamma_regularizer `NULL` or a [regularizers]
#'   object, applied in training.
#' @param beta_constraint,gamma_constraint `NULL` or a [constraints] object,
#'   applied in training.
#' @param synchronized `TRUE` or `FALSE`. Keras synchronizes the batch
#'   statistics across devices when a distribution strategy trains on
#'   several; lcnn trains on one, so both values give the same batch
#'   statistics. As in Keras, `TRUE` turns the fused kernel off, so the
#'   moving variance then follows the biased batch variance (see Details).
#' @param trainable Whether training updates `gamma` and `beta` (`NULL` is
#'   `TRUE`); `FALSE` also makes the layer normalize with its moving
#'   statistics inside [fit()].
#' @param name Layer name; `NULL` gives `"batch_normalization"`,
#'   `"batch_normalization_1"`, ... (see [k_clear_session()]).
#' @param weights `NULL` or the list of initial weights as [get_weights()]
#'   returns them.
#' @return See `object`.
#' @family layers
#' @export
#' @examples
#' model <- keras_model_sequential(input_shape = c(8, 8, 3)) %>%
#'   layer_batch_normalization()
#' summary(model)
#'
#' # At inference a fresh layer divides by sqrt(1 + epsilon).
#' layer_batch_normalization(matrix(c(1, 2, 3, 4), 2))
#'
#' # channels_first images: normalize axis 1.
#' x <- array(rnorm(2 * 3 * 4 * 4), c(2, 3, 4, 4))
#' dim(layer_batch_normalization(x, axis = 1))
layer_batch_normalization <- function(object, axis = -1L, momentum = 0.99, epsilon = 0.001,
                                      center = TRUE, scale = TRUE, beta_initializer = "zeros",
                                      gamma_initializer = "ones",
                                      moving_mean_initializer = "zeros",
                                      moving_variance_initializer = "ones",
                                      beta_regularizer = NULL, gamma_regularizer = NULL,
                                      beta_constraint = NULL, gamma_constraint = NULL,
                                      synchronized = FALSE, input_shape = NULL,
                                      batch_input_shape = NULL, batch_size = NULL, dtype = NULL,
                                      name = NULL, trainable = NULL, weights = NULL) {
  layer_from_arguments(environment(), character(), function(args, call) {
    momentum <- args$momentum
    if (!is.numeric(momentum) || length(momentum) != 1 || is.na(momentum) || momentum < 0 ||
        momentum > 1) {
      lcnn_abort(c("{.arg momentum} must be a number in [0, 1].",
                   x = "Got {format_value(momentum)}."),
                 "argument", call = call)
    }
    config <- list(
      axis = check_batch_norm_axis(args$axis, call),
      momentum = as.numeric(momentum),
      epsilon = check_number(args$epsilon, arg = "epsilon", call = call, positive = TRUE),
      center = check_flag(args$center, arg = "center", call = call),
      scale = check_flag(args$scale, arg = "scale", call = call),
      synchronized = check_flag(args$synchronized, arg = "synchronized", call = call)
    )
    for (w in c("beta", "gamma", "moving_mean", "moving_variance")) {
      arg <- paste0(w, "_initializer")
      config[[arg]] <- check_initializer(args[[arg]], arg = arg, call = call)
    }
    for (w in c("beta", "gamma")) {
      arg <- paste0(w, "_regularizer")
      config[arg] <- list(check_regularizer(args[[arg]], arg = arg, call = call))
      arg <- paste0(w, "_constraint")
      config[arg] <- list(check_constraint(args[[arg]], arg = arg, call = call))
    }
    new_layer("batch_normalization", "BatchNormalization", "batch_normalization", config, args,
              call = call)
  })
}

# Keras's axis: one whole number, counted from 0 for the batch or negative
# from the end; its range is checked when the input's rank is known.
check_batch_norm_axis <- function(axis, call) {
  if (!is_whole(axis) || length(axis) != 1) {
    lcnn_abort(c("{.arg axis} must be a single whole number.",
                 x = "Got {format_value(axis)}.",
                 i = if (is_whole(axis) && length(axis) > 1) "lcnn normalizes along one axis."),
               "argument", call = call)
  }
  if (axis == 0) {
    lcnn_abort(c("{.arg axis} must not be 0, the batch axis.",
                 i = "Axes count from 0 for the batch, as in Keras: -1 (the default) is the \\
                      last axis, 1 the channels of channels_first images."),
               "argument", call = call)
  }
  as_checked_integer(axis, "axis", call)
}

#' @export
layer_plan.lcnn_layer_batch_normalization <- function(layer, input_shape, call) {
  rank <- length(input_shape) + 1
  axis <- layer$config$axis
  resolved <- if (axis < 0) rank + axis else axis
  if (resolved < 1 || resolved >= rank) {
    lcnn_abort(c("{.arg axis} of layer {.val {layer$name}} must name an axis of its input \\
                  other than the batch axis.",
                 x = "Got {.arg axis} = {axis} for input {format_shape(input_shape)}.",
                 i = "Use 1 to {rank - 1}, or -1 to -{rank - 1} counting from the end."),
               "shape", call = call)
  }
  channels <- input_shape[resolved]
  keras_shapes <- list()
  if (layer$config$scale) keras_shapes$gamma <- channels
  if (layer$config$center) keras_shapes$beta <- channels
  keras_shapes$moving_mean <- channels
  keras_shapes$moving_variance <- channels
  list(input_shape = input_shape, output_shape = input_shape, keras_shapes = keras_shapes,
       axis = as.integer(resolved))
}

# Like dense's, the weights are kept in Keras's layout. (Wrappers rather
# than aliases: layer-core.R is collated after this file.)
#' @export
layer_initial_weights.lcnn_layer_batch_normalization <- function(layer, state, dtype) {
  layer_initial_weights.lcnn_layer_dense(layer, state, dtype)
}

#' @export
layer_keras_weights.lcnn_layer_batch_normalization <- function(layer) {
  layer_keras_weights.lcnn_layer_dense(layer)
}

#' @export
layer_import_weights.lcnn_layer_batch_normalization <- function(layer, weights, state, dtype,
                                                                 arg, call, offset = 0) {
  layer_import_weights.lcnn_layer_dense(layer, weights, state, dtype, arg, call, offset)
}

#' @export
layer_engine_layout.lcnn_layer_batch_normalization <- function(layer, weight, keras) {
  as.double(keras)
}

#' @export
layer_weight_trainable.lcnn_layer_batch_normalization <- function(layer) {
  layer$trainable & !(names(layer$weights) %in% c("moving_mean", "moving_variance"))
}

#' @export
layer_engine_spec.lcnn_layer_batch_normalization <- function(layer) {
  state <- layer$state
  rank <- length(state$input_shape) + 1
  # tf-keras runs TensorFlow's fused kernel, which moves the variance
  # towards the unbiased batch variance, exactly in these cases.
  fused <- !layer$config$synchronized && identical(layer$dtype, "float32") && rank %in% 4:5 &&
    state$axis %in% c(1, rank - 1)
  list(type = "batch_normalization", input_shape = state$input_shape,
       axis = state$axis - 1L, momentum = layer$config$momentum,
       epsilon = layer$config$epsilon, frozen = !layer$trainable,
       unbiased_moving_variance = fused,
       gamma = layer$weights$gamma %||% numeric(), beta = layer$weights$beta %||% numeric(),
       moving_mean = layer$weights$moving_mean, moving_variance = layer$weights$moving_variance)
}
