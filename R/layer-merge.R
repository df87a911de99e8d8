# Merge layers: several tensors in, one out.

#' Merge layers
#'
#' Combine a list of tensors (or arrays) into one, as keras's merge layers:
#' `layer_add()` sums them, `layer_subtract()` takes the first minus the
#' second (exactly two inputs), `layer_multiply()` multiplies,
#' `layer_average()` averages, `layer_maximum()` and `layer_minimum()` take
#' the elementwise extremes, and `layer_concatenate()` joins them along
#' `axis`. The elementwise merges need inputs of one shape.
#'
#' As in keras, `inputs` may be missing (the layer is returned, to be called
#' on a list later), and unnamed arguments in `...` are further inputs.
#'
#' @section Shape:
#' Elementwise merges: inputs of one shape `(batch, ...)`, output the same.
#' `layer_concatenate()`: inputs equal but on `axis`; the output's `axis`
#' is the sum of theirs.
#'
#' @param inputs A list of at least two symbolic tensors or numeric arrays.
#' @param ... Further inputs (unnamed), and the layer arguments `name`,
#'   `dtype` and `trainable` (named).
#' @param axis The concatenation axis, counted as in keras (and in R keras,
#'   which passes it unchanged): 0 is the batch, 1 the first axis of a
#'   sample, -1 (the default) the last.
#' @return A layer if `inputs` is missing, else the merged tensor (or array).
#' @family merge layers
#' @family layers
#' @name merge-layers
#' @examples
#' a <- layer_input(shape = 4)
#' b <- layer_input(shape = 4)
#' model <- keras_model(list(a, b), list(layer_add(list(a, b)), layer_concatenate(list(a, b))))
#' predict(model, list(matrix(1, 2, 4), matrix(2, 2, 4)))
NULL

#' @rdname merge-layers
#' @export
layer_concatenate <- function(inputs, ..., axis = -1L) {
  call <- rlang::current_env()
  axis <- check_whole(axis, arg = "axis", call = call)
  merge_layer("concatenate", "Concatenate", rlang::maybe_missing(inputs), list(...),
              list(axis = axis), call)
}

#' @rdname merge-layers
#' @export
layer_add <- function(inputs, ...) {
  merge_layer("add", "Add", rlang::maybe_missing(inputs), list(...), list(),
              rlang::current_env())
}

#' @rdname merge-layers
#' @export
layer_subtract <- function(inputs, ...) {
  merge_layer("subtract", "Subtract", rlang::maybe_missing(inputs), list(...), list(),
              rlang::current_env())
}

#' @rdname merge-layers
#' @export
layer_multiply <- function(inputs, ...) {
  merge_layer("multiply", "Multiply", rlang::maybe_missing(inputs), list(...), list(),
              rlang::current_env())
}

#' @rdname merge-layers
#' @export
layer_average <- function(inputs, ...) {
  merge_layer("average", "Average", rlang::maybe_missing(inputs), list(...), list(),
              rlang::current_env())
}

#' @rdname merge-layers
#' @export
layer_maximum <- function(inputs, ...) {
  merge_layer("maximum", "Maximum", rlang::maybe_missing(inputs), list(...), list(),
              rlang::current_env())
}

#' @rdname merge-layers
#' @export
layer_minimum <- function(inputs, ...) {
  merge_layer("minimum", "Minimum", rlang::maybe_missing(inputs), list(...), list(),
              rlang::current_env())
}

# The body of the layer_<merge>() functions: a merge layer from the named
# arguments in `dots`, applied to `inputs` and the unnamed ones if any.
merge_layer <- function(merge, type, inputs, dots, config, call) {
  dot_names <- names(dots) %||% rep("", length(dots))
  named <- dots[dot_names != ""]
  unknown <- setdiff(names(named), c("name", "dtype", "trainable"))
  if (length(unknown)) {
    lcnn_abort(c("Unknown argument{?s} {.arg {unknown}}.",
                 i = "A merge layer takes its inputs, {.arg name}, {.arg dtype} and \\
                      {.arg trainable}."), "argument", call = call)
  }
  layer <- new_layer("merge", type, tolower(type), c(list(merge = merge), config), named,
                     call = call)
  extra <- unname(dots[dot_names == ""])
  if (rlang::is_missing(inputs) && length(extra) == 0) return(layer)
  if (rlang::is_missing(inputs)) inputs <- list()
  if (inherits(inputs, "lcnn_tensor") || !is.list(inputs)) inputs <- list(inputs)
  compose_layer(c(inputs, extra), layer, call = call, arg = "inputs")
}

#' @export
layer_takes_list.lcnn_layer_merge <- function(layer) TRUE

#' @export
layer_plan.lcnn_layer_merge <- function(layer, input_shape, call) {
  merge <- layer$config$merge
  if (!is.list(input_shape) || length(input_shape) < 2 ||
      (merge == "subtract" && length(input_shape) != 2)) {
    need <- if (merge == "subtract") "exactly two inputs" else "at least two inputs"
    lcnn_abort(c("Layer {.val {layer$name}} needs {need}.",
                 x = "Got {if (is.list(input_shape)) length(input_shape) else 1}."),
               "graph", call = call)
  }
  first <- input_shape[[1]]
  axis <- 0L
  if (merge == "concatenate") {
    rank <- length(first)
    axis <- layer$config$axis
    axis <- if (axis < 0) axis + rank + 1L else axis
    if (axis < 1 || axis > rank) {
      lcnn_abort(c("{.arg axis} = {layer$config$axis} is not a sample axis of inputs of rank \\
                    {rank + 1}.",
                   i = "Axis 0 is the batch; use 1 to {rank}, or -1 to -{rank}."),
                 "argument", call = call)
    }
  }
  fits <- vapply(input_shape, function(shape) {
    if (merge != "concatenate") return(identical(shape, first))
    length(shape) == length(first) && identical(shape[-axis], first[-axis])
  }, logical(1))
  if (!all(fits)) {
    what <- if (merge == "concatenate") paste("the same shape except on axis", layer$config$axis)
            else "the same shape"
    lcnn_abort(c("Layer {.val {layer$name}} needs inputs of {what}.",
                 x = "Got inputs of shapes {vapply(input_shape, format_shape, character(1))}."),
               "shape", call = call)
  }
  output_shape <- first
  if (merge == "concatenate") {
    output_shape <- as.numeric(output_shape)
    output_shape[axis] <- sum(vapply(input_shape, function(s) as.numeric(s[axis]), numeric(1)))
  }
  list(input_shape = input_shape,
       output_shape = checked_output_shape(layer, input_shape, output_shape, call),
       keras_shapes = list(), axis = if (merge == "concatenate") axis - 1L else 0L)
}

#' @export
layer_engine_spec.lcnn_layer_merge <- function(layer) {
  list(type = "merge", merge = layer$config$merge, input_shapes = layer$state$input_shape,
       axis = layer$state$axis)
}
