#' Train a model
#'
#' Trains a compiled model with keras 2.15's arguments and defaults. Whole
#' epochs of mini-batches run in the C++ engine (gather, forward, loss,
#' backward, optimizer update); R is called back between batches only, for
#' progress and interrupts. The model is changed in place.
#'
#' * `validation_split` holds out the *last* fraction of the samples, before
#'   shuffling, as keras does.
#' * `set.seed()` alone makes shuffling, dropout and so the trained weights
#'   reproducible: the engine draws its seeds from R's random number
#'   generator.
#' * Pressing Ctrl-C (an interrupt) stops training between batches; the
#'   model keeps the weights of the last finished batch and the history so
#'   far is returned.
#' * A call that fails on its arguments leaves the model as it was.
#' * For shuffled epochs of more than one batch, the engine keeps a copy of
#'   `x` and `y` in the model's float type with the samples outermost (half
#'   the memory of R's double arrays for a float32 model), so that each
#'   batch reads its samples in runs. The copy is made once and kept until
#'   `fit()` returns: with `validation_split = 0`, before the model is
#'   built, and it then also finds the values that are not finite (see `x`)
#'   in `x` and `y` as it reads each value (other calls scan them first, as
#'   they always scan class indices); else at the first such epoch. Targets
#'   as large as `x` (an autoencoder's) are then read once rather than
#'   twice.
#'   `shuffle = FALSE` needs no copy and makes none. On Linux, the memory
#'   of a copy of 2 MiB or more then waits, with that of large results, for
#'   the next call's copy of the same size (see "Memory of large results"
#'   in [predict()]): a loop of one-epoch `fit()` calls skips faulting fresh
#'   pages in for each.
#' * On more than one thread, threads that would wait while a training step
#'   runs layers too small to share (a classifier's last dense layer and its
#'   loss) gather the next step's batch meanwhile, into a second batch
#'   buffer (one batch of `x` and `y` in the model's float type). Results do
#'   not change.
#'
#' @param object A compiled sequential model.
#' @param x Input array, samples along the first dimension. NA, NaN and
#'   infinite values, and for a float32 model values beyond float32's range
#'   (which it would hold as infinite), are refused with an
#'   `lcnn_error_argument` before the model is built or trained (keras
#'   would train on them into NaN weights).
#' @param y Targets: an array whose first dimension indexes samples and whose
#'   others are the model's output shape; for
#'   `sparse_categorical_crossentropy`, class indices from 0. Values that
#'   are not finite are refused as in `x`.
#' @param batch_size Samples per gradient update.
#' @param epochs Index of the last epoch to train.
#' @param verbose 0 (silent), 1 (a progress bar per epoch), 2 (one line per
#'   epoch) or `"auto"`: 1, except 2 under knitr and 0 under testthat.
#' @param callbacks `NULL` or a list of [callbacks].
#' @param validation_split Fraction in `[0, 1)` of the samples (the last
#'   ones) to validate on.
#' @param validation_data `NULL` or `list(x_val, y_val)` (optionally with
#'   sample weights third).
#' @param shuffle Whether to shuffle the training samples before each epoch.
#' @param class_weight `NULL` or weights named by class index (`"0"`,
#'   `"1"`, ...), multiplying the sample weights of each class.
#' @param sample_weight `NULL` or one non-negative weight per sample.
#' @param initial_epoch Epoch to start from (for resuming training).
#' @param view_metrics Accepted for compatibility with keras (`"auto"`, `TRUE`
#'   or `FALSE`); lcnn draws no live plot of the metrics.
#' @param ... Must be empty: an argument the function does not take (a
#'   misspelled one, such as `batchsize`) is an error of class
#'   `lcnn_error_argument`, not ignored.
#' @return A history object (see [print.lcnn_history()]), invisibly.
#' @family training
#' @export
#' @examples
#' set.seed(1)
#' x <- array(runif(200 * 6), c(200, 6, 1))
#' y <- as.integer(x[, 2, 1] > x[, 5, 1])
#' model <- keras_model_sequential(input_shape = c(6, 1)) %>%
#'   layer_locally_connected_1d(4, 2, activation = "relu") %>%
#'   layer_flatten() %>%
#'   layer_dense(2, activation = "softmax")
#' model %>% compile(optimizer = "adam", loss = "sparse_categorical_crossentropy",
#'                   metrics = "accuracy")
#' history <- model %>% fit(x, y, epochs = 3, verbose = 0)
#' history
fit.lcnn_model <- function(object, x = NULL, y = NULL, batch_size = 32, epochs = 10,
                           verbose = "auto", callbacks = NULL, view_metrics = "auto",
                           validation_split = 0, validation_data = NULL, shuffle = TRUE,
                           class_weight = NULL, sample_weight = NULL, initial_epoch = 0, ...) {
  call <- rlang::current_env()
  check_dots_empty(..., call = call)
  check_compiled(object, call)
  if (!identical(view_metrics, "auto")) check_flag(view_metrics, call = call)
  batch_size <- check_count(batch_size, call = call)
  epochs <- check_count(epochs, min = 0, call = call)
  initial_epoch <- check_count(initial_epoch, min = 0, call = call)
  verbose <- resolve_verbose(verbose, call)
  shuffle <- check_flag(shuffle, call = call)
  if (!is.numeric(validation_split) || length(validation_split) != 1 ||
      is.na(validation_split) || validation_split < 0 || validation_split >= 1) {
    lcnn_abort(c("{.arg validation_split} must be a number in [0, 1).",
                 x = "Got {format_value(validation_split)}."), "argument", call = call)
  }
  callbacks <- check_callbacks(callbacks, call)

  plans <- plan_model(object, x, call)
  # Shuffled epochs gather their batches from the engine's copy of the data
  # with the samples outermost; made before the model is built, the copy
  # also finds values that are not finite in x and in y
  # (prepare_epoch_copies()). Not with validation_split, whose validation
  # samples are checked with x.
  copies_check <- shuffle && validation_split == 0 && epochs > initial_epoch
  data <- training_data(object, plans, x, y, sample_weight, call, scan = !copies_check)
  if (!is.null(class_weight)) check_class_weight_outputs(data, call)
  validation <- NULL
  if (!is.null(validation_data)) {
    if (!is.list(validation_data) || !(length(validation_data) %in% 2:3)) {
      lcnn_abort(c("{.arg validation_data} must be {.code list(x_val, y_val)} or \\
                    {.code list(x_val, y_val, sample_weight_val)}.",
                   x = "Got {format_value(validation_data)}."), "argument", call = call)
    }
    validation <- training_data(object, plans, validation_data[[1]], validation_data[[2]],
                                if (length(validation_data) == 3) validation_data[[3]],
                                call, what = "validation_data")
  } else if (validation_split > 0) {
    split_at <- floor(data$n * (1 - validation_split))
    if (split_at < 1 || split_at >= data$n) {
      lcnn_abort(c("{.arg validation_split} = {validation_split} leaves no samples for \\
                    training or for validation out of {data$n}."), "argument", call = call)
    }
    validation <- subset_data(data, (split_at + 1):data$n)
    data <- subset_data(data, seq_len(split_at))
  }
  # As keras: class weights weight the training samples, not the validation.
  if (!is.null(class_weight)) {
    data$weights <- (data$weights %||% rep(1, data$n)) *
      class_weights(class_weight, data, call)
  }
  copies <- if (copies_check) prepare_epoch_copies(object, data, batch_size, call)
  # Freed here if no trainer took them.
  on.exit(if (!is.null(copies)) .epoch_copies_release(copies), add = TRUE)

  commit_model(object, plans)
  trainer <- model_trainer(object, data)
  if (!is.null(copies)) .trainer_take_epoch_copies(trainer, copies)
  # Whatever happens from here, R's copy of the weights follows the engine's.
  on.exit(sync_from_trainer(object, trainer), add = TRUE)
  # Until then, callbacks' get_weights() and set_weights() use the trainer's.
  object$fitting <- trainer
  on.exit(object$fitting <- NULL, add = TRUE)
  # Shuffled epochs over the same data copy it once, not once an epoch.
  .trainer_keep_epoch_copies(trainer, TRUE)
  on.exit(.trainer_keep_epoch_copies(trainer, FALSE), add = TRUE)
  history <- new_history(epochs = epochs, steps = ceiling(data$n / batch_size),
                         verbose = verbose)
  labels <- score_labels(data$outputs)
  state <- new.env(parent = emptyenv())
  state$model <- object
  state$trainer <- trainer
  state$stop_training <- FALSE
  state$params <- history$params
  batch_hooks <- any(vapply(callbacks, function(cb) isTRUE(cb$batch_hooks), logical(1)))
  named <- function(scores) as.list(stats::setNames(score_values(scores), labels))
  interrupted <- FALSE
  run_hook(callbacks, "on_train_begin", list(), state)
  tryCatch(
    for (epoch in seq_len(max(0, epochs - initial_epoch)) + initial_epoch) {
      run_hook(callbacks, "on_epoch_begin", epoch - 1, list(), state)
      order <- if (shuffle) sample.int(data$n) - 1 else seq_len(data$n) - 1
      seed <- floor(stats::runif(2) * 2^31)
      progress <- epoch_progress(epoch, epochs, ceiling(data$n / batch_size), labels[-1],
                                 verbose)
      # The engine calls this between batches; FALSE stops the epoch.
      after_batch <- function(batch, scores) {
        values <- score_values(scores)
        progress$update(batch, values[1], values[-1])
        if (batch_hooks) {
          run_hook(callbacks, "on_batch_end", batch - 1, named(scores), state)
          if (!state$stop_training) run_hook(callbacks, "on_batch_begin", batch, list(), state)
        }
        !state$stop_training
      }
      if (batch_hooks) run_hook(callbacks, "on_batch_begin", 0, list(), state)
      started <- Sys.time()
      scores <- .trainer_fit_epoch(trainer, data$x, data$y, data$weights, data$n, order,
                                   batch_size, seed, lcnn_num_threads(), after_batch,
                                   if (batch_hooks) 1L else progress$every)
      values <- stats::setNames(score_values(scores), labels)
      if (!is.null(validation)) {
        val <- .trainer_evaluate(trainer, validation$x, validation$y, validation$weights,
                                 validation$n, batch_size, lcnn_num_threads())
        values <- c(values, stats::setNames(score_values(val), paste0("val_", labels)))
      }
      history <- record_epoch(history, epoch, values)
      progress$done(values, Sys.time() - started)
      run_hook(callbacks, "on_epoch_end", epoch - 1, as.list(values), state)
      if (state$stop_training) break
    },
    interrupt = function(e) interrupted <<- TRUE
  )
  run_hook(callbacks, "on_train_end", list(), state)
  if (interrupted) {
    cli::cli_inform(c("!" = "Training interrupted; the model keeps the weights of the last \\
                             finished batch."))
  }
  invisible(history)
}

#' Evaluate a model
#'
#' The loss and metrics of a compiled model on data, computed in the engine
#' in inference mode (dropout off), weighted by `sample_weight` if given.
#'
#' `evaluate()` is lcnn's own generic with keras's signature
#' `(object, x, y, ...)`: the `generics` package's `evaluate(x, ...)` would
#' bind a named `x =` to the model.
#'
#' @inheritParams fit.lcnn_model
#' @return A named list: `loss`, then each metric.
#' @family training
#' @export
#' @examples
#' model <- keras_model_sequential(input_shape = 3) %>% layer_dense(1)
#' model %>% compile(optimizer = "sgd", loss = "mse", metrics = "mae")
#' evaluate(model, matrix(1, 4, 3), rep(0, 4))
evaluate <- function(object, ...) UseMethod("evaluate")

#' @export
evaluate.default <- function(object, ...) abort_not_lcnn(object, "a model")

# The engine's sample-major copies of fit()'s data for its shuffled epochs
# (EpochCopies in trainer.hpp), made now instead of at the first epoch: the
# copy reads every value of x and y anyway and finds those that are not
# finite (any_not_finite()) on the way, where a scan of its own took 14 ms
# of each one-epoch fit() of the demo model (bench/NOTES.md), and such a
# value still stops fit() before it builds the model. NULL for a single
# batch, which the epochs gather from R's arrays: x and y are scanned
# instead.
prepare_epoch_copies <- function(model, data, batch_size, call) {
  arrays <- c(data$x, data$y)
  args <- c(array_labels("x", length(data$x)), array_labels("y", length(data$y)))
  if (data$n <= batch_size) {
    for (i in seq_along(arrays)) {
      if (any_not_finite(arrays[[i]], model_dtype(model))) {
        abort_not_finite(arrays[[i]], args[i], model_dtype(model), call)
      }
    }
    return(NULL)
  }
  prepared <- .epoch_copies_prepare(data$x, data$y, data$n, model_dtype(model),
                                    lcnn_num_threads())
  for (i in which(prepared$not_finite)) {
    abort_not_finite(arrays[[i]], args[i], model_dtype(model), call)
  }
  prepared$copies
}

#' @rdname evaluate
#' @export
evaluate.lcnn_model <- function(object, x = NULL, y = NULL, batch_size = 32, verbose = "auto",
                                sample_weight = NULL, ...) {
  call <- rlang::current_env()
  check_dots_empty(..., call = call)
  check_compiled(object, call)
  batch_size <- check_count(batch_size, call = call)
  resolve_verbose(verbose, call)
  plans <- plan_model(object, x, call)
  data <- training_data(object, plans, x, y, sample_weight, call)
  commit_model(object, plans)
  scores <- .trainer_evaluate(model_trainer(object, data), data$x, data$y, data$weights,
                              data$n, batch_size, lcnn_num_threads())
  as.list(stats::setNames(score_values(scores), score_labels(data$outputs)))
}

check_compiled <- function(model, call) {
  if (!inherits(model, "lcnn_model")) {
    lcnn_abort(c("{.arg object} must be a model.", x = "Got {format_value(model)}."),
               "argument", call = call)
  }
  if (is.null(model$compiled)) {
    lcnn_abort(c("Model {.val {model$name}} must be compiled before training or evaluation.",
                 i = "Call {.code compile(model, optimizer = ..., loss = ...)} first."),
               "state", call = call)
  }
}

resolve_verbose <- function(verbose, call) {
  if (identical(verbose, "auto")) {
    if (identical(Sys.getenv("TESTTHAT"), "true")) return(0L)
    if (isTRUE(getOption("knitr.in.progress"))) return(2L)
    return(1L)
  }
  if (!is_whole(verbose) || length(verbose) != 1 || !(verbose %in% 0:2)) {
    lcnn_abort(c("{.arg verbose} must be \"auto\", 0, 1 or 2.",
                 x = "Got {format_value(verbose)}."), "argument", call = call)
  }
  as.integer(verbose)
}

# Plans for building an unbuilt sequential model for x's shape (none if
# built). training_data() checks x in full afterwards, so x is read here
# only for an unbuilt model's shape, and not scanned for values that are
# not finite: a second scan cost each fit() of the demo model 14 ms
# (bench/NOTES.md).
plan_model <- function(model, x, call) {
  if (length(model$layers) == 0) {
    lcnn_abort("Model {.val {model$name}} has no layers.", "state", call = call)
  }
  if (model_is_built(model)) return(NULL)
  xs <- input_arrays(model, NULL, x, call, allow_na = TRUE)
  shape <- dim(xs[[1]])[-1]
  list(layers = plan_layers(model, shape, call), input_shape = shape)
}

commit_model <- function(model, plans) {
  if (!is.null(plans)) commit_layers(model, plans$layers, plans$input_shape)
}

planned_input_shapes <- function(model, plans) {
  if (is.null(plans)) model_input_shapes(model) else list(plans$input_shape)
}

# The output shapes the model has, or will have once `plans` are committed.
planned_output_shapes <- function(model, plans) {
  if (is.null(plans)) return(model_output_shapes(model))
  last <- length(plans$layers)
  list(plans$layers[[last]]$state$output_shape %||% output_shape_of(model$layers[[last]]))
}

# `x` as a list of checked double arrays, one per model input: an array for
# a one-input model, else a list in input order or named by input layer.
input_arrays <- function(model, plans, x, call, arg = "x", allow_na = FALSE) {
  expected <- if (!is.null(plans) || model_is_built(model)) planned_input_shapes(model, plans)
  xs <- as_array_list(x, model_input_names(model), arg, call)
  xs <- lapply(seq_along(xs), function(i) {
    x_arg <- names(xs)[i]
    a <- check_input_array(xs[[i]], expected[[i]], call = call, arg = x_arg)
    if (!allow_na && any_not_finite(a, model_dtype(model))) {
      abort_not_finite(a, x_arg, model_dtype(model), call)
    }
    a
  })
  counts <- vapply(xs, function(a) dim(a)[1], numeric(1))
  if (length(unique(counts)) > 1) {
    lcnn_abort(c("The inputs in {.arg {arg}} must have the same number of samples.",
                 x = "They have {counts}."), "shape", call = call)
  }
  unname(xs)
}

# The error for data `a`, given as argument `arg`, that holds values a
# model of `dtype` cannot train on (any_not_finite()). Infinite values
# only make the loss and then the weights NaN, as in Keras, which takes
# them.
abort_not_finite <- function(a, arg, dtype, call) {
  not_finite <- sum(!is.finite(a))
  beyond <- sum(abs(a[is.finite(a)]) > largest_value(dtype))
  largest <- signif(largest_value(dtype), 8)
  lcnn_abort(c("{.arg {arg}} must hold finite values{if (beyond > 0) ' within float32\\'s range'}.",
               x = if (not_finite > 0) "Found {not_finite} NA, NaN or infinite value{?s}.",
               x = if (beyond > 0) "Found {beyond} value{?s} beyond {largest} in size, which \\
                                    float32 cannot hold."),
             "argument", call = call)
}

# The labels of `count` arrays given as argument `arg`, for messages: `arg`
# itself for one, else arg[[1]], arg[[2]], ...
array_labels <- function(arg, count) {
  if (count == 1) arg else paste0(arg, "[[", seq_len(count), "]]")
}

# One value per model input or output: the value itself for one, else a list
# of them in order or named by layer. Names the result by each entry's
# argument label for messages (array_labels()).
as_array_list <- function(x, names, arg, call, role = "input") {
  if (length(names) == 1) {
    if (is_array_list(x) && length(x) == 1) x <- x[[1]]
    return(stats::setNames(list(x), array_labels(arg, 1)))
  }
  if (!is.list(x) || is.object(x) || length(x) != length(names)) {
    lcnn_abort(c("{.arg {arg}} must be a list of {length(names)} arrays, one per \
                  {if (arg %in% c('y', 'validation_data[[2]]')) 'output' else 'input'} \
                  ({.val {names}}).",
                 x = "Got {format_value(x)}."), "argument", call = call)
  }
  if (!is.null(names(x))) {
    if (!setequal(names(x), names)) {
      lcnn_abort(c("The names of {.arg {arg}} must be {.val {names}}.",
                   x = "Got {.val {names(x)}}."), "argument", call = call)
    }
    x <- x[names]
  }
  stats::setNames(unname(x), array_labels(arg, length(x)))
}

# Per output: its name, loss, loss weight and metrics, as compile() set them.
model_targets <- function(model, call) {
  output_targets(model$compiled, model_output_names(model), call)
}

# Per output of those `names`: its name, loss, loss weight and metrics, from
# compile()'s record `compiled`; metrics the loss's targets cannot feed are
# refused (check_loss_metrics()).
output_targets <- function(compiled, names, call) {
  losses <- compiled$loss(names)
  weights <- compiled$loss_weights(names)
  metrics <- compiled$metrics(names)
  lapply(seq_along(names), function(o) {
    check_loss_metrics(losses[[o]], metrics[[o]], if (length(names) > 1) names[o], call)
  })
  lapply(seq_along(names), function(o) {
    list(name = names[o], loss = losses[[o]], weight = weights[[o]], metrics = metrics[[o]])
  })
}

# Keras's names for the scores: "loss" and the metrics with one output;
# with several, also each output's loss and metrics after its layer.
score_labels <- function(outputs) {
  if (length(outputs) == 1) return(c("loss", outputs[[1]]$metrics))
  names <- vapply(outputs, function(o) o$name, character(1))
  c("loss", paste0(names, "_loss"),
    unlist(lapply(outputs, function(o) if (length(o$metrics)) paste0(o$name, "_", o$metrics))))
}

score_values <- function(scores) {
  c(scores$loss, if (length(scores$output_losses) > 1) scores$output_losses, scores$metrics)
}

# x, y and sample weights checked against the model and its losses, as the
# engine reads them: lists of arrays, y as class indices for sparse losses,
# else with the output's shape; weights are sample_weight's. `outputs`
# describes each output's target. Without `scan`, the caller checks x, and
# the targets other than class indices, for values that are not finite
# itself.
training_data <- function(model, plans, x, y, sample_weight, call, what = "x",
                          scan = TRUE) {
  x_arg <- if (what == "x") "x" else paste0(what, "[[1]]")
  y_arg <- if (what == "x") "y" else paste0(what, "[[2]]")
  xs <- input_arrays(model, plans, x, call, arg = x_arg, allow_na = !scan)
  n <- dim(xs[[1]])[1]
  targets <- model_targets(model, call)
  shapes <- planned_output_shapes(model, plans)
  ys <- as_array_list(y, model_output_names(model), y_arg, call, role = "output")
  outputs <- lapply(seq_along(targets), function(o) {
    check_target(ys[[o]], names(ys)[o], targets[[o]], shapes[[o]], n,
                 if (length(xs) == 1) x_arg else "x", model_dtype(model), call, scan = scan)
  })
  weights <- check_sample_weight(sample_weight, n, call,
                                 arg = if (what == "x") "sample_weight" else
                                   paste0(what, "[[3]]"))
  list(x = xs, y = lapply(outputs, function(o) o$y), weights = weights, n = n,
       outputs = lapply(outputs, function(o) o[names(o) != "y"]))
}

# One output's targets checked against its shape and loss; for values that
# are not finite too (given the model's `dtype`), unless not `scan` (fit()'s copy finds them: see
# prepare_epoch_copies()). Class indices are scanned all the same, so that
# such a one is not reported as out of range below.
check_target <- function(y, y_arg, target, output, n, x_arg, dtype, call, scan = TRUE) {
  loss <- target$loss
  if (!(is.numeric(y) || is.logical(y)) || length(y) == 0) {
    lcnn_abort(c("{.arg {y_arg}} must be a numeric array or vector.",
                 x = "Got {format_value(y)}."), "argument", call = call)
  }
  y_dims <- if (is.null(dim(y))) length(y) else dim(y)
  if (y_dims[1] != n) {
    lcnn_abort(c("{.arg {x_arg}} and {.arg {y_arg}} must have the same number of samples.",
                 x = "{.arg {x_arg}} has {n}, {.arg {y_arg}} has {y_dims[1]}."),
               "shape", call = call)
  }
  classes <- output[length(output)]
  sparse <- loss$name == "sparse_categorical_crossentropy"
  if ((scan || sparse) && any_not_finite(y, dtype)) abort_not_finite(y, y_arg, dtype, call)
  expected <- if (sparse) output[-length(output)] else output
  got <- y_dims[-1]
  if (length(got) == length(expected) + 1 && got[length(got)] == 1) got <- got[-length(got)]
  if (length(got) == 0 && identical(as.integer(expected), 1L)) got <- 1L
  if (!identical(as.integer(got), as.integer(expected))) {
    want <- if (sparse) "class indices" else "targets"
    lcnn_abort(c("{.arg {y_arg}} does not fit the model's output for loss {.val {loss$name}}.",
                 x = "Got {.arg {y_arg}} of shape {format_shape(got, n)}; expected {want} of \
                      shape {format_shape(expected)}.",
                 i = if (loss$name == "categorical_crossentropy") "One-hot targets need one \
                     column per unit ({classes})."),
               "shape", call = call)
  }
  invalid <- if (sparse) y[y != round(y) | y < 0 | y >= classes]
  if (length(invalid)) {
    lcnn_abort(c("{.arg {y_arg}} must hold class indices from 0 to {classes - 1} for \
                  {.val {loss$name}}.",
                 x = "Found {length(invalid)} value{?s} outside, such as {invalid[1]}."),
               "argument", call = call)
  }
  storage.mode(y) <- "double"
  c(target, list(y = y, target_dims = c(n, expected), output_dims = c(n, output)))
}

check_sample_weight <- function(w, n, call, arg) {
  if (is.null(w)) return(NULL)
  if (!is.numeric(w) || length(w) != n || !all(is.finite(w)) || any(w < 0)) {
    lcnn_abort(c("{.arg {arg}} must be {n} finite non-negative number{?s}, one per sample.",
                 x = "Got {format_value(w)}."), "argument", call = call)
  }
  as.double(w)
}

check_class_weight_outputs <- function(data, call) {
  if (length(data$outputs) > 1) {
    lcnn_abort(c("{.arg class_weight} needs a model with one output.",
                 x = "This model has {length(data$outputs)}.",
                 i = "Use {.arg sample_weight} instead."), "argument", call = call)
  }
}

# Per-sample weights from keras's class_weight (names are class indices),
# for targets with one class axis per sample, as keras supports.
class_weights <- function(class_weight, data, call) {
  output <- data$outputs[[1]]
  given <- class_weight
  # unlist() would name a list's longer entries "01", "02", ...
  if (is.list(class_weight) && all(lengths(class_weight) == 1)) {
    class_weight <- unlist(class_weight)
  }
  # Names that are class indices as written ("1.5" or " 1" are not).
  keys <- names(class_weight)
  if (!is.numeric(class_weight) || is.null(keys) || !all(grepl("^[0-9]+$", keys)) ||
      anyDuplicated(as.numeric(keys)) > 0 || !all(is.finite(class_weight)) ||
      any(class_weight < 0)) {
    lcnn_abort(c("{.arg class_weight} must be finite non-negative weights named by class \
                  index (\"0\", \"1\", ...), each index once.", x = "Got {format_value(given)}."),
               "argument", call = call)
  }
  if (length(output$output_dims) > 2) {
    lcnn_abort(c("{.arg class_weight} needs one class axis per sample.",
                 x = "The model's output has shape {format_shape(output$output_dims[-1])}.",
                 i = "Use {.arg sample_weight} instead."),
               "argument", call = call)
  }
  classes <- output$output_dims[2]
  y <- data$y[[1]]
  label <- if (output$loss$name == "sparse_categorical_crossentropy") {
    as.vector(y)
  } else if (classes == 1) {
    round(as.vector(y))
  } else {
    max.col(matrix(y, nrow = data$n), ties.method = "first") - 1
  }
  weight <- class_weight[match(label, as.numeric(keys))]
  weight[is.na(weight)] <- 1
  unname(weight)
}

subset_data <- function(data, rows) {
  take <- function(a) {
    if (is.null(dim(a))) return(a[rows])
    dims <- dim(a)
    out <- matrix(a, nrow = dims[1])[rows, , drop = FALSE]
    array(out, c(length(rows), dims[-1]))
  }
  n <- length(rows)
  list(x = lapply(data$x, take), y = lapply(data$y, take),
       weights = if (!is.null(data$weights)) data$weights[rows], n = n,
       outputs = lapply(data$outputs, function(o) {
         o$target_dims[1] <- n
         o$output_dims[1] <- n
         o
       }))
}
