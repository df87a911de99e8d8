#' Freeze and unfreeze weights
#'
#' Set `trainable` on a model's layers, as keras's `freeze_weights()` and
#' `unfreeze_weights()`: all of them, or those from `from` to `to`
#' (inclusive; layer names or positions from 1). As in keras, the change
#' takes effect at the next [compile()].
#'
#' As in Keras 2, a model with `trainable = FALSE` trains none of its
#' weights, whatever its layers' own flags (also as a layer of another
#' model). Without `from` and `to`, `freeze_weights()` sets the model's own
#' flag to `FALSE` too; `unfreeze_weights()`, and `freeze_weights()` with
#' `from` or `to`, set it to `TRUE`, as R keras does.
#'
#' @param object A sequential model.
#' @param from,to First and last layer to change (`NULL`: the first / the
#'   last layer).
#' @return `object`, invisibly.
#' @family training
#' @export
#' @examples
#' model <- keras_model_sequential(input_shape = c(8, 1)) %>%
#'   layer_locally_connected_1d(2, 3) %>%
#'   layer_flatten() %>%
#'   layer_dense(1)
#' freeze_weights(model, to = 1)
#' vapply(model$layers, function(l) l$trainable, logical(1))
freeze_weights <- function(object, from = NULL, to = NULL) {
  set_trainable(object, from, to, FALSE, rlang::current_env())
}

#' @rdname freeze_weights
#' @export
unfreeze_weights <- function(object, from = NULL, to = NULL) {
  set_trainable(object, from, to, TRUE, rlang::current_env())
}

set_trainable <- function(model, from, to, value, call) {
  if (!inherits(model, "lcnn_model")) {
    lcnn_abort(c("{.arg object} must be a model.", x = "Got {format_value(model)}."),
               "argument", call = call)
  }
  if (length(model$layers) == 0) {
    lcnn_abort("Model {.val {model$name}} has no layers to {if (value) 'unfreeze' else 'freeze'}.",
               "state", call = call)
  }
  names <- vapply(model$layers, function(l) l$name, character(1))
  position <- function(x, default, arg) {
    if (is.null(x)) return(default)
    if (is.character(x) && length(x) == 1 && x %in% names) return(match(x, names))
    if (is_whole(x) && length(x) == 1 && x >= 1 && x <= length(names)) return(as.integer(x))
    lcnn_abort(c("{.arg {arg}} must be a layer name or a position from 1 to {length(names)}.",
                 x = "Got {format_value(x)}."), "argument", call = call)
  }
  first <- position(from, 1L, "from")
  last <- position(to, length(names), "to")
  if (first > last) {
    lcnn_abort(c("{.arg from} must not come after {.arg to}.",
                 x = "Got layers {first} to {last}."), "argument", call = call)
  }
  for (layer in model$layers[first:last]) layer$trainable <- value
  # As in R keras, freeze_weights() without `from` and `to` freezes the
  # model itself, and any other call leaves it trainable: a frozen model
  # trains none of its layers, whatever their own flags.
  assign("trainable", value || !is.null(from) || !is.null(to), envir = fields_of(model))
  invisible(model)
}
