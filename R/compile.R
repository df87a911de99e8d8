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
#' @param object A model.
#' @param optimizer An [optimizers] object or name (default `"rmsprop"`, as
#'   keras).
#' @param loss A [losses] object or name. For a model with several outputs,
#'   one loss for all of them, or a list with one per output (in order, or
#'   named by the layers that make the outputs).
#' @param metrics `NULL` or metric names: `"accuracy"` (resolved from the
#'   loss and the shapes, as keras does), `"binary_accuracy"`,
#'   `"categorical_accuracy"`, `"sparse_categorical_accuracy"`, `"mae"`,
#'   `"mse"`. With several outputs they apply to each, or a list gives
#'   the metrics of each output (in order, or named like `loss`; outputs
#'   not named get none).
#' @param loss_weights `NULL` or one weight per output (in order, or named
#'   like `loss`; outputs not named weigh 1): the loss minimised is the
#'   weighted sum of the outputs' losses, as keras.
#' @param device Where the model trains: `"auto"` (the default) for the
#'   best device there is, `"cpu"`, or `"cuda"` for an NVIDIA GPU.
#'   `"cuda"` raises an error of class `lcnn_error_device` that says what
#'   is missing when the build has no CUDA, the machine no driver or device
#'   (see [lcnn_cuda_available()]), the model is not float32, or the GPU
#'   cannot run the model (the error names the layer). `"auto"` trains on
#'   the GPU when there is a usable one and it can run the model, else on
#'   the CPU. The GPU runs sequential float32 models of locally connected,
#'   convolution, dense, activation, dropout, pooling (max and average, local
#'   and global), batch normalization, flatten, reshape, permute, zero padding
#'   and cropping layers, with every loss, metric and optimizer, sample and
#'   class weights, regularizers and constraints; not yet merges and other
#'   functional graphs.
#'   Results are meant to agree with the CPU's to float32 rounding; in this
#'   version that is checked only by running the CUDA code emulated on the
#'   host, not yet on a GPU (see the README), so `device = "cpu"` is the
#'   choice that keeps a model on the CPU where a GPU is present.
#'   `print(model)` shows the device.
#' @inheritParams fit.lcnn_model
#' @return `object`, invisibly.
#' @family training
#' @export
#' @examples
#' model <- keras_model_sequential(input_shape = 4) %>% layer_dense(3, activation = "softmax")
#' model %>% compile(optimizer = "adam", loss = "sparse_categorical_crossentropy",
#'                   metrics = "accuracy")
compile.lcnn_model <- function(object, optimizer = "rmsprop", loss = NULL, metrics = NULL,
                               loss_weights = NULL, device = "auto", ...) {
  call <- rlang::current_env()
  check_dots_empty(..., call = call)
  if (is.null(loss)) lcnn_abort("{.arg loss} is required.", "argument", call = call)
  outputs <- if (model_is_built(object)) model_output_names(object)
  compiled <- list(optimizer = check_optimizer(optimizer, call = call),
                   loss = per_output(loss, outputs, "loss", call, check_loss),
                   metrics = per_output(metrics, outputs, "metrics", call, check_metrics,
                                        shared = function(x) is.null(x) || is.character(x),
                                        missing = character()),
                   loss_weights = per_output(loss_weights %||% 1, outputs, "loss_weights", call,
                                             check_loss_weight, missing = 1),
                   device = resolve_device(device, dtype = model_dtype(object), call = call),
                   requested_device = device)
  # Before the model is built its output is not known yet: fit() checks
  # the metrics against the loss then (model_targets()).
  if (!is.null(outputs)) output_targets(compiled, outputs, call)
  # The layers are known: the GPU must run them (else "auto" gives the CPU).
  # Asked before the model changes, so that a refusal leaves it as it was.
  if (compiled$device == "cuda" && model_is_built(object)) {
    compiled$device <- device_for_model(object, flat_graph(object), compiled = compiled,
                                        call = call)
  }
  object$compiled <- compiled
  object$trainer <- NULL
  object$trainer_key <- NULL
  object$optimizer_state <- NULL
  invisible(object)
}

# A compile() argument given once for every output, or as a list with one
# entry per output (in order, or named by output layer; outputs left out get
# `missing` if there is one); each entry checked by `check`. Returns a
# function from the output names to the entries.
per_output <- function(x, outputs, arg, call, check,
                       shared = function(x) !is.list(x) || inherits(x, "lcnn_loss"),
                       missing = NULL) {
  if (shared(x) && !(is.numeric(x) && length(x) > 1)) {
    value <- check(x, arg = arg, call = call)
    return(function(names) rep(list(value), length(names)))
  }
  entries <- as.list(x)
  checked <- lapply(seq_along(entries), function(i) {
    check(entries[[i]], arg = paste0(arg, "[[", i, "]]"), call = call)
  })
  names(checked) <- names(entries)
  resolve <- function(names) {
    if (!is.null(names(checked))) {
      unknown <- setdiff(names(checked), names)
      if (length(unknown) || (is.null(missing) && !all(names %in% names(checked)))) {
        lcnn_abort(c("The names of {.arg {arg}} must be the model's outputs.",
                     x = "Got {.val {names(checked)}}; the outputs are {.val {names}}."),
                   "argument", call = call)
      }
      return(lapply(names, function(n) if (n %in% names(checked)) checked[[n]] else missing))
    }
    if (length(checked) != length(names)) {
      lcnn_abort(c("{.arg {arg}} needs one entry per output.",
                   x = "Got {length(checked)} for {length(names)} output{?s}."),
                 "argument", call = call)
    }
    checked
  }
  if (!is.null(outputs)) resolve(outputs)
  resolve
}

check_loss_weight <- function(x, arg, call) check_number(x, arg = arg, call = call)
