#' Read and write weights
#'
#' `get_weights()` returns a model's or layer's weights as a list of R arrays
#' in Keras's layouts (for locally connected layers, the layout of their
#' `implementation`); `set_weights()` takes the same list back. For a model
#' the list holds every layer's weights in order. `count_params()` counts
#' the entries of those arrays, as Keras does.
#'
#' `set_weights()` checks every array before it changes anything: on a wrong
#' count or shape it raises an `lcnn_error_shape` and the object keeps its
#' weights.
#'
#' In a callback during [fit()], as in Keras, a model's `get_weights()`
#' returns the weights training has reached so far, and its `set_weights()`
#' sets the weights that training goes on from and that the model keeps
#' when `fit()` returns.
#'
#' @param object A model or a layer.
#' @param weights A list of numeric arrays, as `get_weights()` returns.
#' @param ... Unused.
#' @return `get_weights()`: a list of arrays. `set_weights()`: `object`,
#'   invisibly. `count_params()`: a number.
#' @family models
#' @export
#' @examples
#' layer <- layer_locally_connected_1d(filters = 2, kernel_size = 3,
#'                                     input_shape = c(6, 1))
#' model <- keras_model_sequential() %>% layer_locally_connected_1d(
#'   filters = 2, kernel_size = 3, input_shape = c(6, 1))
#' w <- get_weights(model)
#' str(w)
#' w[[1]][] <- 1
#' set_weights(model, w)
#' count_params(model)
get_weights <- function(object, ...) UseMethod("get_weights")

#' @rdname get_weights
#' @export
set_weights <- function(object, weights, ...) UseMethod("set_weights")

#' @rdname get_weights
#' @export
count_params <- function(object, ...) UseMethod("count_params")

#' @export
get_weights.default <- function(object, ...) abort_not_lcnn(object, "a model or a layer")

#' @export
set_weights.default <- function(object, weights, ...) {
  abort_not_lcnn(object, "a model or a layer")
}

#' @export
count_params.default <- function(object, ...) abort_not_lcnn(object, "a model or a layer")

check_layer_built <- function(layer, call) {
  if (!layer$built) {
    lcnn_abort(c("Layer {.val {layer$name}} has no weights yet.",
                 i = "Weights are created when the layer's input shape is known: give \\
                      {.arg input_shape}, add it to a model with one, or call it on data."),
               "state", call = call)
  }
}

#' @export
get_weights.lcnn_layer <- function(object, ...) {
  check_layer_built(object, rlang::caller_env())
  layer_keras_weights(object)
}

#' @export
set_weights.lcnn_layer <- function(object, weights, ...) {
  call <- rlang::caller_env()
  check_layer_built(object, call)
  imported <- layer_import_weights(object, weights, object$state, object$dtype,
                                   arg = "weights", call = call)
  object$weights <- imported
  object$version <- next_version()
  invisible(object)
}

#' @export
count_params.lcnn_layer <- function(object, ...) {
  check_layer_built(object, rlang::caller_env())
  layer_param_count(object)
}

#' @export
get_weights.lcnn_model <- function(object, ...) {
  check_model_built(object, rlang::caller_env())
  trainer <- fitting_trainer(object)
  if (!is.null(trainer)) sync_weights_from_trainer(object, trainer)
  weights <- unlist(lapply(model_leaf_layers(object), layer_keras_weights), recursive = FALSE)
  if (is.null(weights)) list() else weights
}

#' @export
set_weights.lcnn_model <- function(object, weights, ...) {
  call <- rlang::caller_env()
  check_model_built(object, call)
  layers <- model_leaf_layers(object)
  counts <- vapply(layers, function(l) length(l$state$keras_shapes), integer(1))
  if (!is.list(weights) || length(weights) != sum(counts)) {
    lcnn_abort(c("{.arg weights} must be a list of {sum(counts)} array{?s}, as \\
                  {.fn get_weights} returns for this model.",
                 x = "Got {format_value(weights)}."),
               "shape", call = call)
  }
  ends <- cumsum(counts)
  imported <- lapply(seq_along(layers), function(i) {
    own <- weights[seq_len(counts[i]) + ends[i] - counts[i]]
    layer_import_weights(layers[[i]], own, layers[[i]]$state, layers[[i]]$dtype,
                         arg = "weights", call = call, offset = ends[i] - counts[i])
  })
  # During a fit(), training goes on from these weights (fitting_trainer()).
  trainer <- fitting_trainer(object)
  if (!is.null(trainer)) {
    blocks <- unlist(lapply(imported, unname), recursive = FALSE)
    engine_checked(object, call, .trainer_set_parameters(trainer, unname(blocks)))
  }
  for (i in seq_along(layers)) {
    layers[[i]]$weights <- imported[[i]]
    layers[[i]]$version <- next_version()
  }
  if (!is.null(trainer)) object$trainer_key <- engine_key(object)
  invisible(object)
}

#' @export
count_params.lcnn_model <- function(object, ...) {
  check_model_built(object, rlang::caller_env())
  sum(vapply(model_leaf_layers(object), layer_param_count, numeric(1)))
}

# Checks a layer's list of Keras-layout weights: count, numeric, shapes, and
# finite values that `dtype` can hold (float32 would turn 1e300 into Inf).
# Every path that gives a layer weights (`weights =`, set_weights()) comes
# through here before anything changes.
check_weight_list <- function(layer, weights, keras_shapes, dtype, arg, call, offset = 0) {
  expected <- vapply(keras_shapes, format_shape_plain, character(1))
  if (!is.list(weights) || length(weights) != length(keras_shapes)) {
    lcnn_abort(c("{.arg {arg}} for layer {.val {layer$name}} must be a list of \\
                  {length(keras_shapes)} array{?s} of shape{?s} {expected}.",
                 x = "Got {format_value(weights)}."),
               "shape", call = call)
  }
  for (i in seq_along(keras_shapes)) {
    w <- weights[[i]]
    dims <- if (is.null(dim(w))) length(w) else dim(w)
    if (!(is.numeric(w) || is.logical(w)) ||
        !identical(as.numeric(dims), as.numeric(keras_shapes[[i]]))) {
      lcnn_abort(c("{.arg {arg}[[{i + offset}]]} ({names(keras_shapes)[i]}) of layer \\
                    {.val {layer$name}} must be a numeric array of shape {expected[i]}.",
                   x = "Got {format_value(w)}."),
                 "shape", call = call)
    }
    # range() reads the weight without copying it, where is.finite() would
    # allocate a vector as long (62.7 million entries for DeepFace's L4).
    bounds <- range(w)
    if (!all(is.finite(bounds))) {
      lcnn_abort(c("{.arg {arg}[[{i + offset}]]} ({names(keras_shapes)[i]}) of layer \\
                    {.val {layer$name}} must hold finite values.",
                   x = "It holds {sum(!is.finite(w))} NA, NaN or infinite value{?s}."),
                 "argument", call = call)
    }
    if (dtype == "float32" && max(abs(bounds)) > float32_max) {
      lcnn_abort(c("{.arg {arg}[[{i + offset}]]} ({names(keras_shapes)[i]}) of layer \\
                    {.val {layer$name}} must hold values within float32's range, at most \\
                    {signif(float32_max, 8)} in absolute value.",
                   x = "It holds {sum(abs(w) > float32_max)} value{?s} beyond that, up to \\
                        {signif(max(abs(bounds)), 3)}."),
                 "argument", call = call)
    }
  }
  invisible(weights)
}

# float32's largest finite value.
float32_max <- (2 - 2^-23) * 2^127

format_shape_plain <- function(dims) paste0("(", paste(dims, collapse = ", "), ")")
