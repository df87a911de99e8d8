#' Predict with a model
#'
#' Runs the model on `x` in mini-batches of `batch_size` inside the engine
#' (on the GPU for a model trained there, see [compile()]) and returns the
#' outputs as an R array. A model that has not been built
#' yet is built for `x`'s shape first, as in Keras. A trained model predicts
#' with the network [fit()] trained while no weights have been set since,
#' the same to the bit as one built afresh from its weights, without the
#' time and memory of building one.
#'
#' @param object A model.
#' @param x A numeric array whose first dimension indexes samples and whose
#'   other dimensions are the model's input shape (`x[b, i, j, c]` is sample
#'   `b`, row `i`, column `j`, channel `c` with channels_last). A
#'   matrix is taken as samples by features. For a model with several
#'   inputs, a list of such arrays (in order, or named by input layer).
#' @param batch_size Samples per engine batch. Results do not depend on it
#'   beyond float rounding.
#' @param verbose Accepted for compatibility with keras (`"auto"`, 0, 1 or 2);
#'   prediction prints nothing.
#' @inheritParams fit.lcnn_model
#' @return A numeric array with one row per sample; for a model with several
#'   outputs, a list of them.
#' @section Memory of large results: On Linux, an array of 2 MiB or more
#'   lives in memory that lcnn maps for it alone rather than in R's heap. A
#'   loop of `predict()` calls with large outputs then no longer runs the
#'   collector for nearly every result, nor faults every page of a result in
#'   afresh (README.md, "Engine and speed"). R's heap does not count such
#'   arrays, so [gc()] does not report them and `mem.maxVSize()` does not
#'   limit them; lcnn counts them instead, and runs R's collector before the
#'   arrays R has not freed yet would pass 256 MiB, or twice what was left of
#'   them after its last collection: a collection of the youngest generation
#'   (`gc(full = FALSE)`), then a full one if more than half of that is
#'   still left. They are ordinary R vectors in every other way.
#'
#'   The memory of a result R has freed is kept for the next result of the
#'   same size, which then skips clearing fresh pages (a quarter of a call
#'   with a 29.5 MB result). The system may take that memory back whenever
#'   it runs short (`MADV_FREE`), though the process's resident size counts
#'   it until then; what lcnn keeps and what R has not freed stay within the
#'   limit above together, and lcnn gives all of it back once R's collector
#'   has run twice with no `predict()` or `fit()` in between (two calls of
#'   [gc()] do it). [fit()]'s copies of the data (see there) wait in the
#'   same memory for the next `fit()` call, within the same limit.
#' @family models
#' @export
#' @examples
#' model <- keras_model_sequential(input_shape = c(8, 8, 1)) %>%
#'   layer_locally_connected_2d(filters = 2, kernel_size = 3, activation = "relu")
#' y <- predict(model, array(runif(5 * 8 * 8), c(5, 8, 8, 1)))
#' dim(y)
predict.lcnn_model <- function(object, x, batch_size = 32, verbose = "auto", ...) {
  call <- rlang::current_env()
  check_dots_empty(..., call = call)
  if (missing(x)) lcnn_abort("{.arg x} is required: the data to predict on.", "argument")
  batch_size <- check_count(batch_size)
  if (!(identical(verbose, "auto") || (is_whole(verbose) && length(verbose) == 1 &&
                                       verbose %in% 0:2))) {
    lcnn_abort(c("{.arg verbose} must be \"auto\", 0, 1 or 2.",
                 x = "Got {format_value(verbose)}."), "argument")
  }
  if (length(object$layers) == 0) {
    lcnn_abort("Model {.val {object$name}} has no layers.", "state")
  }
  xs <- input_arrays(object, NULL, x, call, allow_na = TRUE)
  if (!model_is_built(object)) {
    commit_layers(object, plan_layers(object, dim(xs[[1]])[-1], call), dim(xs[[1]])[-1])
  }
  # The trainer holds the trained model: predict with it while its weights
  # are the model's, rather than build a network of its own from R's copy
  # of them, which took a model of 14.7 million parameters 32 ms at each
  # predict() after a fit() (bench/NOTES.md); a network built before the
  # training then goes. On the GPU, where the model lives, weights set
  # since go into the trainer first.
  has_trainer <- !is.null(object$trainer) && !.network_is_null(object$trainer)
  key <- engine_key(object)
  in_sync <- has_trainer && identical(object$trainer_key, key)
  outputs <- if (in_sync || (has_trainer && model_device(object) == "cuda")) {
    if (!in_sync) {
      engine_checked(object, call,
                     .trainer_set_parameters(object$trainer, model_parameter_blocks(object)))
      object$trainer_key <- key
    }
    object$engine <- NULL
    .trainer_predict(object$trainer, xs, batch_size, lcnn_num_threads())
  } else {
    .network_predict(model_network(object, call), xs, batch_size, lcnn_num_threads())
  }
  if (length(outputs) == 1) outputs[[1]] else outputs
}

# x as a double array of dims (samples, input_shape...), checked against the
# expected per-sample shape when there is one.
check_input_array <- function(x, expected, call, arg = "x") {
  if (!(is.numeric(x) || is.logical(x)) || length(x) == 0) {
    lcnn_abort(c("{.arg {arg}} must be a non-empty numeric array.",
                 x = "Got {format_value(x)}."),
               "argument", call = call)
  }
  if (is.null(dim(x))) {
    lcnn_abort(c("{.arg {arg}} must be an array with the samples along its first dimension.",
                 x = "Got a vector of length {length(x)}.",
                 i = if (!is.null(expected)) "Expected shape {format_shape(expected)}."),
               "shape", call = call)
  }
  dims <- dim(x)
  if (!is.null(expected) && !identical(as.integer(dims[-1]), as.integer(expected))) {
    lcnn_abort(c("{.arg {arg}} has the wrong shape.",
                 x = "Got {format_shape(dims[-1], dims[1])}; expected {format_shape(expected)}.",
                 i = "The first dimension indexes samples; the rest must match the input shape."),
               "shape", call = call)
  }
  # storage.mode<- copies even a double array; the engine reads doubles in place.
  if (!is.double(x)) storage.mode(x) <- "double"
  x
}
