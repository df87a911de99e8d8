# Losses and metrics: specs in R, computed by the engine with Keras 2's
# definitions (clipping of probabilities, sum_over_batch_size reduction).

new_loss <- function(name, from_logits = FALSE, delta = 1, call = rlang::caller_env()) {
  structure(list(name = name, from_logits = check_flag(from_logits, arg = "from_logits",
                                                       call = call),
                 delta = check_number(delta, arg = "delta", positive = TRUE, call = call)),
            class = "lcnn_loss")
}

#' Losses
#'
#' The losses of Keras 2. Pass one to [compile()], or its name: `"mse"`
#' (`"mean_squared_error"`), `"mae"` (`"mean_absolute_error"`), `"huber"`,
#' `"binary_crossentropy"`, `"categorical_crossentropy"`,
#' `"sparse_categorical_crossentropy"`.
#'
#' Each sample's loss averages over the last axis (sums, for the categorical
#' crossentropies); the batch loss is the weighted sum over samples divided
#' by the number of samples, as Keras's default reduction. Crossentropies on
#' probabilities clip them to `[1e-7, 1 - 1e-7]`; when the model's last layer
#' ends in a sigmoid (binary) or softmax (categorical) activation, they are
#' computed from that layer's logits instead, exactly as Keras does.
#'
#' @param from_logits Whether the model outputs logits rather than
#'   probabilities.
#' @param delta Where the Huber loss turns from quadratic to linear.
#' @return An `lcnn_loss` object.
#' @family training
#' @name losses
#' @examples
#' loss_sparse_categorical_crossentropy(from_logits = TRUE)
NULL

#' @rdname losses
#' @export
loss_mean_squared_error <- function() new_loss("mse")

#' @rdname losses
#' @export
loss_mean_absolute_error <- function() new_loss("mae")

#' @rdname losses
#' @export
loss_huber <- function(delta = 1) new_loss("huber", delta = delta)

#' @rdname losses
#' @export
loss_binary_crossentropy <- function(from_logits = FALSE) {
  new_loss("binary_crossentropy", from_logits)
}

#' @rdname losses
#' @export
loss_categorical_crossentropy <- function(from_logits = FALSE) {
  new_loss("categorical_crossentropy", from_logits)
}

#' @rdname losses
#' @export
loss_sparse_categorical_crossentropy <- function(from_logits = FALSE) {
  new_loss("sparse_categorical_crossentropy", from_logits)
}

loss_by_name <- list(
  mse = loss_mean_squared_error, mean_squared_error = loss_mean_squared_error,
  mae = loss_mean_absolute_error, mean_absolute_error = loss_mean_absolute_error,
  huber = loss_huber, huber_loss = loss_huber,
  binary_crossentropy = loss_binary_crossentropy,
  categorical_crossentropy = loss_categorical_crossentropy,
  sparse_categorical_crossentropy = loss_sparse_categorical_crossentropy
)

check_loss <- function(x, arg = rlang::caller_arg(x), call = rlang::caller_env()) {
  object_or_name(x, "lcnn_loss", loss_by_name, "a loss name or a `loss_*()` object", arg, call)
}

#' @export
print.lcnn_loss <- function(x, ...) {
  cat("<loss: ", x$name, if (x$from_logits) " (from logits)", ">\n", sep = "")
  invisible(x)
}

metric_names <- c("accuracy", "acc", "binary_accuracy", "categorical_accuracy",
                  "sparse_categorical_accuracy", "mae", "mean_absolute_error", "mse",
                  "mean_squared_error")

check_metrics <- function(x, arg = rlang::caller_arg(x), call = rlang::caller_env()) {
  if (is.null(x)) return(character())
  if (is.list(x)) x <- unlist(x)
  if (!is.character(x) || anyNA(x) || !all(x %in% metric_names)) {
    lcnn_abort(c("{.arg {arg}} must be NULL or metric names.",
                 x = "Got {format_value(x)}.",
                 i = "Known metrics: {.val {metric_names}}."),
               "argument", call = call)
  }
  unname(x)
}

# Metrics that read class indices, the targets of a sparse loss ("accuracy"
# resolves to one of them, see resolve_metric()). The others read one target
# per class.
class_index_metrics <- c("accuracy", "acc", "sparse_categorical_accuracy")

# The metrics of one output (named `output` among several, else NULL) must
# read the targets its loss takes: for a sparse loss, one class index per
# sample, which the other metrics would read as one value per class.
check_loss_metrics <- function(loss, metrics, output, call) {
  if (loss$name != "sparse_categorical_crossentropy") return(invisible())
  wrong <- setdiff(metrics, class_index_metrics)
  if (length(wrong) == 0) return(invisible())
  of_output <- if (!is.null(output)) " of output {.val {output}}"
  lcnn_abort(c(paste0("{.arg metrics}", of_output, " cannot include {.val {wrong}} with loss \\
                       {.val {loss$name}}."),
               x = "The loss takes class indices as targets, one per sample; \\
                    {.val {wrong}} need{?s/} one target per class.",
               i = "Metrics of class indices: {.val {class_index_metrics[-2]}}; or use \\
                    {.val categorical_crossentropy} with one-hot targets."),
             "argument", call = call)
}

# The engine metric a name stands for, given the shapes of targets and
# predictions (Keras resolves "accuracy" from them, and from the loss).
resolve_metric <- function(name, loss, target_dims, output_dims) {
  if (name %in% c("accuracy", "acc")) {
    binary <- output_dims[length(output_dims)] == 1 || loss$name == "binary_crossentropy"
    sparse <- length(target_dims) < length(output_dims) ||
      loss$name == "sparse_categorical_crossentropy"
    return(if (binary) "binary_accuracy" else if (sparse) "sparse_categorical_accuracy" else
      "categorical_accuracy")
  }
  switch(name, mean_absolute_error = "mae", mean_squared_error = "mse", name)
}
