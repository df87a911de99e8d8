# Regularizers and constraints: specs in R; in training the engine adds the
# penalties to the loss and runs the constraints after each optimizer update.

# Factors are >= 0: a negative penalty would reward large weights without
# bound, and the loss would go to minus infinity (Keras 3 refuses them too).
new_regularizer <- function(l1, l2) {
  structure(list(l1 = check_number(l1, arg = "l1", call = rlang::caller_env(), min = 0),
                 l2 = check_number(l2, arg = "l2", call = rlang::caller_env(), min = 0)),
            class = "lcnn_regularizer")
}

#' Weight regularizers
#'
#' Penalties on a layer's weights (`kernel_regularizer`, `bias_regularizer`)
#' or outputs (`activity_regularizer`), with Keras 2's names and defaults:
#' `l1 * sum(abs(w)) + l2 * sum(w^2)`, added to the loss in training (an
#' activity penalty is divided by the batch size, as in Keras). Both keras
#' 2's `l =` and keras3's `l1 =` / `l2 =` are accepted.
#'
#' With `implementation = 2`, Keras also penalizes the unused entries of the
#' dense kernel; lcnn holds them at zero, so the reported loss can differ
#' from Keras's by that constant while the training is the same.
#'
#' @param l The penalty factor (keras 2's name), >= 0.
#' @param l1,l2 The L1 and L2 penalty factors, >= 0.
#' @return An `lcnn_regularizer` object.
#' @family regularizers
#' @name regularizers
#' @examples
#' regularizer_l2(0.001)
NULL

#' @rdname regularizers
#' @export
regularizer_l1 <- function(l = 0.01, l1 = l) {
  check_one_factor(missing(l), missing(l1), "l1")
  new_regularizer(l1, 0)
}

#' @rdname regularizers
#' @export
regularizer_l2 <- function(l = 0.01, l2 = l) {
  check_one_factor(missing(l), missing(l2), "l2")
  new_regularizer(0, l2)
}

# keras 2 names the factor `l`, keras3 `l1`/`l2`: one of them, not both.
check_one_factor <- function(l_missing, other_missing, other, call = rlang::caller_env()) {
  if (!l_missing && !other_missing) {
    lcnn_abort("Give {.arg l} (keras 2) or {.arg {other}} (keras3), not both.", "argument",
               call = call)
  }
}

#' @rdname regularizers
#' @export
regularizer_l1_l2 <- function(l1 = 0.01, l2 = 0.01) new_regularizer(l1, l2)

#' @export
print.lcnn_regularizer <- function(x, ...) {
  cat("<regularizer: l1 = ", x$l1, ", l2 = ", x$l2, ">\n", sep = "")
  invisible(x)
}

new_constraint <- function(name, ...) {
  structure(list(name = name, args = list(...)), class = "lcnn_constraint")
}

check_axis <- function(axis, call = rlang::caller_env()) {
  if (!is_whole(axis) || length(axis) < 1 || any(axis < -1)) {
    lcnn_abort(c("{.arg axis} must be whole numbers (axes of the Keras-layout weight, from 0).",
                 x = "Got {format_value(axis)}."),
               "argument", call = call)
  }
  as_checked_integer(axis, "axis", call)
}

#' Weight constraints
#'
#' Projections applied to a weight after each optimizer update, with Keras
#' 2's names and defaults. `axis` counts (from 0, as in Keras) the axes of
#' the Keras-layout array of the weight, so it means what it meant in Keras
#' for each `implementation`. With `implementation = 2`, the unused entries
#' of the dense kernel (held at zero by lcnn) do not count in the norms.
#'
#' @param max_value,min_value Bounds of the norm.
#' @param rate Rate of moving towards the bounds (`minmaxnorm`), in `[0, 1]`: 1
#'   enforces them at each update.
#' @param axis Axes along which norms are computed.
#' @return An `lcnn_constraint` object.
#' @family constraints
#' @name constraints
#' @examples
#' constraint_maxnorm(3)
NULL

#' @rdname constraints
#' @export
constraint_maxnorm <- function(max_value = 2, axis = 0) {
  new_constraint("maxnorm", max_value = check_number(max_value, positive = TRUE),
                 axis = check_axis(axis))
}

#' @rdname constraints
#' @export
constraint_nonneg <- function() new_constraint("nonneg")

#' @rdname constraints
#' @export
constraint_unitnorm <- function(axis = 0) new_constraint("unitnorm", axis = check_axis(axis))

#' @rdname constraints
#' @export
constraint_minmaxnorm <- function(min_value = 0, max_value = 1, rate = 1, axis = 0) {
  min_value <- check_number(min_value)
  max_value <- check_number(max_value)
  if (min_value < 0 || max_value < min_value) {
    lcnn_abort(c("Need 0 <= {.arg min_value} <= {.arg max_value}.",
                 x = "Got min_value = {min_value} and max_value = {max_value}."),
               "argument")
  }
  new_constraint("minmaxnorm", min_value = min_value, max_value = max_value,
                 rate = check_number(rate, min = 0, max = 1), axis = check_axis(axis))
}

#' @export
print.lcnn_constraint <- function(x, ...) {
  shown <- vapply(x$args, deparse_short, character(1))
  cat("<constraint: ", x$name,
      if (length(shown)) paste0("(", paste(names(shown), shown, sep = " = ", collapse = ", "), ")"),
      ">\n", sep = "")
  invisible(x)
}

# `x` if NULL or of `class`; the error names the functions (`maker`, e.g.
# "regularizer_*") that make such objects.
check_class_or_null <- function(x, class, maker, arg = rlang::caller_arg(x),
                                call = rlang::caller_env()) {
  if (is.null(x) || inherits(x, class)) return(x)
  lcnn_abort(c("{.arg {arg}} must be NULL or a {.code {maker}()} object.",
               x = "Got {format_value(x)}."),
             "argument", call = call)
}

check_regularizer <- function(x, arg = rlang::caller_arg(x), call = rlang::caller_env()) {
  check_class_or_null(x, "lcnn_regularizer", "regularizer_*", arg, call)
}

check_constraint <- function(x, arg = rlang::caller_arg(x), call = rlang::caller_env()) {
  check_class_or_null(x, "lcnn_constraint", "constraint_*", arg, call)
}

# Constraint axes must name axes of the Keras-layout weight they act on;
# checked when the layer is built, so that training cannot fail on them.
check_constraint_axes <- function(layer, keras_shapes, call) {
  for (weight in names(keras_shapes)) {
    axis <- layer$config[[paste0(weight, "_constraint")]]$args$axis
    dims <- keras_shapes[[weight]]
    if (!is.null(axis) && any(axis >= length(dims) | axis < -1)) {
      lcnn_abort(c("The {.arg axis} of the {weight} constraint of layer {.val {layer$name}} \\
                    must name axes of its Keras-layout shape {format_shape_plain(dims)} \\
                    (from 0, or -1 for the last).",
                   x = "Got {format_value(axis)}."),
                 "argument", call = call)
    }
  }
}
