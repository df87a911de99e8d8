#' @importFrom generics compile
#' @export
generics::compile

#' @importFrom generics fit
#' @export
generics::fit

#' Configure a model for training
#'
#' Sets the optimizer, loss and metrics, as keras's `compile()`. The model
#' is changed in place and returned invisibly; compiling again starts a
#' fresh optimizer state (and is needed after changing `trainable`).
#'
#' @param object A sequential model.
#' @param optimizer An [optimizers] object or name (default `"rmsprop"`, as
#'   keras).
#' @param loss A [losses] object or name.
#' @param metrics `NULL` or metric names: `"accuracy"` (resolved from the
#'   loss and the shapes, as keras does), `"binary_accuracy"`,
#'   `"categorical_accuracy"`, `"sparse_categorical_accuracy"`, `"mae"`,
#'   `"mse"`.
#' @param ... Unused.
#' @return `object`, invisibly.
#' @family training
#' @export
#' @examples
#' model <- keras_model_sequential(input_shape = 4) %>% layer_dense(3, activation = "softmax")
#' model %>% compile(optimizer = "adam", loss = "sparse_categorical_crossentropy",
#'                   metrics = "accuracy")
compile.lcnn_model <- function(object, optimizer = "rmsprop", loss = NULL, metrics = NULL, ...) {
  call <- rlang::current_env()
  if (is.null(loss)) lcnn_abort("{.arg loss} is required.", "argument", call = call)
  compiled <- list(optimizer = check_optimizer(optimizer, call = call),
                   loss = check_loss(loss, call = call),
                   metrics = check_metrics(metrics, call = call))
  object$compiled <- compiled
  object$trainer <- NULL
  object$trainer_key <- NULL
  object$optimizer_state <- NULL
  invisible(object)
}
