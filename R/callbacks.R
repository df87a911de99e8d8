# Callbacks: objects with keras's hooks, called by fit() at the start and end
# of training, of each epoch and (if a callback asks) of each batch. A hook
# gets the epoch or batch index (from 0, as in keras), the logs (named list
# of the current loss and metrics) and the training state `fit`, an
# environment with the model, the engine trainer, `stop_training` and the
# fit() parameters.

hook_names <- c("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
                "on_batch_begin", "on_batch_end")

new_callback <- function(class, ..., batch_hooks = FALSE) {
  callback <- new.env(parent = emptyenv())
  hooks <- list(...)
  for (name in names(hooks)) assign(name, hooks[[name]], envir = callback)
  callback$batch_hooks <- batch_hooks
  class(callback) <- c(paste0("lcnn_callback_", class), "lcnn_callback")
  callback
}

run_hook <- function(callbacks, hook, ...) {
  for (cb in callbacks) {
    f <- get0(hook, envir = cb, inherits = FALSE)
    if (is.function(f)) f(...)
  }
}

check_callbacks <- function(x, call) {
  if (is.null(x)) return(list())
  if (inherits(x, "lcnn_callback")) x <- list(x)
  if (!is.list(x) || !all(vapply(x, inherits, logical(1), "lcnn_callback"))) {
    lcnn_abort(c("{.arg callbacks} must be NULL or a list of {.code callback_*()} objects.",
                 x = "Got {format_value(x)}."), "argument", call = call)
  }
  x
}

# "min" or "max": whether smaller values of `monitor` are better.
resolve_mode <- function(mode, monitor, call) {
  mode <- check_choice(mode, c("auto", "min", "max"), arg = "mode", call = call)
  if (mode != "auto") return(mode)
  if (grepl("acc|auc", monitor)) "max" else "min"
}

# A callback's `verbose`: 0 or 1 (or FALSE or TRUE), as keras takes it.
check_callback_verbose <- function(verbose, call) {
  if (!(is.numeric(verbose) || is.logical(verbose)) || length(verbose) != 1 ||
      is.na(verbose) || !(verbose %in% 0:1)) {
    lcnn_abort(c("{.arg verbose} must be 0 or 1.", x = "Got {format_value(verbose)}."),
               "argument", call = call)
  }
  as.integer(verbose)
}

# Whether function `f` can be called with `n` arguments by position: it
# takes `...`, or at least `n` arguments of which at most `n` lack a
# default. A primitive without an argument list (args() gives NULL) has
# nothing to check.
takes_args <- function(f, n) {
  header <- args(f)
  if (is.null(header)) return(TRUE)
  params <- formals(header)
  if ("..." %in% names(params)) return(TRUE)
  required <- sum(vapply(params, function(p) identical(p, quote(expr = )), logical(1)))
  length(params) >= n && required <= n
}

# `f`, a function that a callback calls with the arguments `signature`
# names, checked when the callback is made rather than when fit() first
# calls it, after epochs have trained.
check_hook_function <- function(f, signature, arg, call) {
  if (!takes_args(f, length(signature))) {
    expected <- paste(signature, collapse = ", ")
    lcnn_abort(c("{.arg {arg}} must be a function that takes {.code ({expected})} or \\
                  {.code ...}.",
                 x = "Got {describe_function(f)}."), "argument", call = call)
  }
  f
}

# "a function of `(epoch)`", for messages.
describe_function <- function(f) {
  paste0("a function of `(", paste(names(formals(args(f))), collapse = ", "), ")`")
}

improved <- function(value, best, mode, min_delta) {
  if (is.null(best)) return(TRUE)
  if (mode == "min") value < best - min_delta else value > best + min_delta
}

# The monitored value from the logs, or NULL with a warning, as keras.
monitored <- function(logs, monitor, callback) {
  value <- logs[[monitor]]
  if (is.null(value)) {
    cli::cli_warn(c("{callback} is monitoring {.val {monitor}}, which is not available.",
                    i = "Available: {.val {names(logs)}}."),
                  class = c("lcnn_warning_monitor", "lcnn_warning"))
  }
  value
}

#' Callbacks
#'
#' Callbacks act during [fit()], with the names, arguments and defaults of
#' keras 2: they see each epoch's logs (`loss`, the metrics, and `val_`
#' versions when there is validation data), can stop training, change the
#' learning rate, or save the model. Epoch and batch numbers passed to
#' callback functions count from 0, as in keras.
#'
#' * `callback_early_stopping()` stops when `monitor` has not improved by
#'   more than `min_delta` for `patience` epochs; with
#'   `restore_best_weights`, the model then takes back the weights of its
#'   best epoch.
#' * `callback_model_checkpoint()` saves the model (with [saveRDS()]) or,
#'   with `save_weights_only`, its [get_weights()] list, after each epoch
#'   (or when `monitor` improves, with `save_best_only`). `filepath` may
#'   hold keras's placeholders such as `"{epoch:02d}"` or `"{val_loss:.2f}"`.
#' * `callback_reduce_lr_on_plateau()` multiplies the learning rate by
#'   `factor` when `monitor` stalls for `patience` epochs.
#' * `callback_csv_logger()` writes one row per epoch to a CSV file.
#' * `callback_lambda()` calls your functions.
#' * `callback_terminate_on_nan()` stops when the loss becomes NaN or
#'   infinite.
#' * `callback_learning_rate_scheduler()` sets the learning rate at the start
#'   of each epoch to `schedule(epoch, lr)`.
#'
#' @param monitor Name of the value to watch, e.g. `"val_loss"`.
#' @param min_delta Smallest change that counts as an improvement.
#' @param patience Epochs without improvement to wait.
#' @param verbose 0 (quiet) or 1 (say what the callback does).
#' @param mode `"auto"`, `"min"` or `"max"`: whether the monitored value
#'   should go down or up (`"auto"`: up for accuracies).
#' @param baseline `NULL` or a value the monitored value must beat.
#' @param restore_best_weights Whether to restore the best epoch's weights
#'   when stopping.
#' @param start_from_epoch Epochs to wait before watching.
#' @return An `lcnn_callback` object.
#' @family callbacks
#' @name callbacks
#' @examples
#' callback_early_stopping(monitor = "val_loss", patience = 3,
#'                         restore_best_weights = TRUE)
NULL

#' @rdname callbacks
#' @export
callback_early_stopping <- function(monitor = "val_loss", min_delta = 0, patience = 0,
                                    verbose = 0, mode = "auto", baseline = NULL,
                                    restore_best_weights = FALSE, start_from_epoch = 0) {
  call <- rlang::current_env()
  monitor <- check_string(monitor, call = call)
  min_delta <- abs(check_number(min_delta, call = call))
  patience <- check_count(patience, min = 0, call = call)
  verbose <- check_callback_verbose(verbose, call)
  mode <- resolve_mode(mode, monitor, call)
  if (!is.null(baseline) &&
      (!is.numeric(baseline) || length(baseline) != 1 || !is.finite(baseline))) {
    lcnn_abort(c("{.arg baseline} must be NULL or a finite number.",
                 x = "Got {format_value(baseline)}."), "argument", call = call)
  }
  restore <- check_flag(restore_best_weights, call = call)
  start <- check_count(start_from_epoch, min = 0, call = call)
  state <- new.env(parent = emptyenv())
  new_callback(
    "early_stopping",
    on_train_begin = function(logs, fit) {
      state$wait <- 0
      state$best <- baseline
      state$best_weights <- NULL
    },
    on_epoch_end = function(epoch, logs, fit) {
      value <- monitored(logs, monitor, "Early stopping")
      if (is.null(value) || epoch < start) return()
      if (restore && is.null(state$best_weights)) {
        state$best_weights <- .trainer_parameters(fit$trainer)
      }
      state$wait <- state$wait + 1
      if (improved(value, state$best, mode, min_delta)) {
        state$best <- value
        if (restore) state$best_weights <- .trainer_parameters(fit$trainer)
        if (is.null(baseline) || improved(value, baseline, mode, 0)) state$wait <- 0
        return()
      }
      if (state$wait >= patience && epoch > 0) {
        fit$stop_training <- TRUE
        if (verbose > 0) cli::cli_inform("Epoch {epoch + 1}: early stopping.")
        if (restore && !is.null(state$best_weights)) {
          if (verbose > 0) cli::cli_inform("Restoring the weights of the best epoch.")
          .trainer_set_parameters(fit$trainer, state$best_weights)
        }
      }
    }
  )
}

# keras's file name placeholders: "{epoch:02d}", "{val_loss:.2f}", "{epoch}".
filepath_pattern <- "\\{([A-Za-z_][A-Za-z0-9_]*)(:([^}]*))?\\}"

format_filepath <- function(filepath, epoch, logs) {
  values <- c(list(epoch = epoch + 1), logs)
  matches <- gregexpr(filepath_pattern, filepath)[[1]]
  if (matches[1] == -1) return(filepath)
  pieces <- regmatches(filepath, list(matches))[[1]]
  out <- vapply(pieces, format_placeholder, character(1), values = values)
  regmatches(filepath, list(matches)) <- list(out)
  filepath
}

# One placeholder filled in from `values`, or left as it is without a value.
format_placeholder <- function(piece, values) {
  parts <- regmatches(piece, regexec(filepath_pattern, piece))[[1]]
  value <- values[[parts[2]]]
  if (is.null(value)) return(piece)
  spec <- if (nzchar(parts[4])) parts[4] else if (parts[2] == "epoch") "d" else "g"
  if (grepl("d$", spec)) value <- as.integer(round(value))
  sprintf(paste0("%", spec), value)
}

# callback_model_checkpoint()'s `filepath`, each placeholder formatted once
# with a made-up value (the epoch is a whole number, logs are fractions),
# so that a bad format fails now rather than after the first epoch trained.
check_filepath <- function(filepath, call) {
  filepath <- check_string(filepath, call = call)
  pieces <- regmatches(filepath, gregexpr(filepath_pattern, filepath))[[1]]
  for (piece in pieces) {
    name <- regmatches(piece, regexec(filepath_pattern, piece))[[1]][2]
    values <- stats::setNames(list(if (name == "epoch") 1 else 0.5), name)
    problem <- tryCatch({
      format_placeholder(piece, values)
      NULL
    }, error = conditionMessage, warning = conditionMessage)
    if (!is.null(problem)) {
      examples <- c("{epoch:02d}", "{val_loss:.2f}")
      lcnn_abort(c("{.arg filepath} holds placeholder {.val {piece}}, whose format does not \\
                    work.",
                   x = "{problem}",
                   i = "Placeholders such as {.val {examples}} take a format of \\
                        {.fn sprintf} after the colon, without the {.code %}."),
                 "argument", call = call)
    }
  }
  filepath
}

#' @rdname callbacks
#' @param filepath Where to save; may hold `{epoch}` and log placeholders,
#'   optionally with a [sprintf()] format after a colon (`"{val_loss:.2f}"`),
#'   which is checked when the callback is made.
#' @param save_best_only Save only when `monitor` improves.
#' @param save_weights_only Save the weights list rather than the model.
#' @param save_freq `"epoch"` (the only choice).
#' @export
callback_model_checkpoint <- function(filepath, monitor = "val_loss", verbose = 0,
                                      save_best_only = FALSE, save_weights_only = FALSE,
                                      mode = "auto", save_freq = "epoch") {
  call <- rlang::current_env()
  filepath <- check_filepath(filepath, call)
  monitor <- check_string(monitor, call = call)
  verbose <- check_callback_verbose(verbose, call)
  mode <- resolve_mode(mode, monitor, call)
  best_only <- check_flag(save_best_only, call = call)
  weights_only <- check_flag(save_weights_only, call = call)
  check_choice(save_freq, "epoch", call = call)
  state <- new.env(parent = emptyenv())
  new_callback(
    "model_checkpoint",
    on_train_begin = function(logs, fit) state$best <- NULL,
    on_epoch_end = function(epoch, logs, fit) {
      if (best_only) {
        value <- monitored(logs, monitor, "Model checkpoint")
        if (is.null(value) || !improved(value, state$best, mode, 0)) return()
        state$best <- value
      }
      path <- format_filepath(filepath, epoch, logs)
      # get_weights() reads the trainer's weights itself; a saved model
      # also needs the optimizer's state.
      if (!weights_only) sync_from_trainer(fit$model, fit$trainer)
      saveRDS(if (weights_only) get_weights(fit$model) else fit$model, path)
      if (verbose > 0) cli::cli_inform("Epoch {epoch + 1}: saved to {.path {path}}.")
    }
  )
}

#' @rdname callbacks
#' @param factor Factor by which the learning rate is reduced.
#' @param cooldown Epochs to wait after a reduction before watching again.
#' @param min_lr Lower bound of the learning rate.
#' @export
callback_reduce_lr_on_plateau <- function(monitor = "val_loss", factor = 0.1, patience = 10,
                                          verbose = 0, mode = "auto", min_delta = 1e-04,
                                          cooldown = 0, min_lr = 0) {
  call <- rlang::current_env()
  monitor <- check_string(monitor, call = call)
  factor <- check_number(factor, positive = TRUE, call = call)
  if (factor >= 1) {
    lcnn_abort(c("{.arg factor} must be below 1.", x = "Got {factor}."), "argument",
               call = call)
  }
  patience <- check_count(patience, min = 0, call = call)
  verbose <- check_callback_verbose(verbose, call)
  mode <- resolve_mode(mode, monitor, call)
  min_delta <- check_number(min_delta, call = call)
  cooldown <- check_count(cooldown, min = 0, call = call)
  min_lr <- check_number(min_lr, call = call)
  state <- new.env(parent = emptyenv())
  new_callback(
    "reduce_lr_on_plateau",
    on_train_begin = function(logs, fit) {
      state$best <- NULL
      state$wait <- 0
      state$cooldown <- 0
    },
    on_epoch_end = function(epoch, logs, fit) {
      value <- monitored(logs, monitor, "Reduce LR on plateau")
      if (is.null(value)) return()
      if (state$cooldown > 0) {
        state$cooldown <- state$cooldown - 1
        state$wait <- 0
      }
      if (improved(value, state$best, mode, min_delta)) {
        state$best <- value
        state$wait <- 0
      } else if (state$cooldown <= 0) {
        state$wait <- state$wait + 1
        if (state$wait >= patience) {
          lr <- .trainer_learning_rate(fit$trainer)
          if (lr > min_lr) {
            new_lr <- max(lr * factor, min_lr)
            .trainer_set_learning_rate(fit$trainer, new_lr)
            if (verbose > 0) {
              cli::cli_inform("Epoch {epoch + 1}: reducing the learning rate to {new_lr}.")
            }
            state$cooldown <- cooldown
            state$wait <- 0
          }
        }
      }
    }
  )
}

#' @rdname callbacks
#' @param filename CSV file to write.
#' @param separator Field separator.
#' @param append Append to an existing file rather than overwrite it.
#' @export
callback_csv_logger <- function(filename, separator = ",", append = FALSE) {
  call <- rlang::current_env()
  filename <- check_string(filename, call = call)
  separator <- check_string(separator, call = call)
  append <- check_flag(append, call = call)
  state <- new.env(parent = emptyenv())
  new_callback(
    "csv_logger",
    on_train_begin = function(logs, fit) {
      state$header <- !(append && file.exists(filename))
      if (!append) unlink(filename)
    },
    on_epoch_end = function(epoch, logs, fit) {
      row <- data.frame(epoch = epoch, as.data.frame(logs, check.names = FALSE),
                        check.names = FALSE)
      utils::write.table(row, filename, sep = separator, row.names = FALSE,
                         col.names = state$header, append = !state$header || append,
                         quote = FALSE)
      state$header <- FALSE
    }
  )
}

#' @rdname callbacks
#' @param on_epoch_begin,on_epoch_end,on_batch_begin,on_batch_end Functions of
#'   `(epoch, logs)` or `(batch, logs)`, or `NULL`.
#' @param on_train_begin,on_train_end Functions of `(logs)`, or `NULL`.
#'   Each function must take the arguments it is called with (or `...`);
#'   `callback_lambda()` checks that.
#' @export
callback_lambda <- function(on_epoch_begin = NULL, on_epoch_end = NULL, on_batch_begin = NULL,
                            on_batch_end = NULL, on_train_begin = NULL, on_train_end = NULL) {
  call <- rlang::current_env()
  user <- list(on_epoch_begin = on_epoch_begin, on_epoch_end = on_epoch_end,
               on_batch_begin = on_batch_begin, on_batch_end = on_batch_end,
               on_train_begin = on_train_begin, on_train_end = on_train_end)
  signatures <- list(on_epoch_begin = c("epoch", "logs"), on_epoch_end = c("epoch", "logs"),
                     on_batch_begin = c("batch", "logs"), on_batch_end = c("batch", "logs"),
                     on_train_begin = "logs", on_train_end = "logs")
  for (name in names(user)) {
    if (!is.null(user[[name]]) && !is.function(user[[name]])) {
      lcnn_abort(c("{.arg {name}} must be a function or NULL.",
                   x = "Got {format_value(user[[name]])}."), "argument", call = call)
    }
    if (!is.null(user[[name]])) check_hook_function(user[[name]], signatures[[name]], name, call)
  }
  user <- Filter(Negate(is.null), user)
  hooks <- lapply(names(user), function(name) {
    f <- user[[name]]
    if (name %in% c("on_train_begin", "on_train_end")) {
      function(logs, fit) f(logs)
    } else {
      function(index, logs, fit) f(index, logs)
    }
  })
  names(hooks) <- names(user)
  do.call(new_callback, c(list("lambda"), hooks,
                          list(batch_hooks = any(grepl("batch", names(user))))))
}

#' @rdname callbacks
#' @export
callback_terminate_on_nan <- function() {
  new_callback(
    "terminate_on_nan",
    on_batch_end = function(batch, logs, fit) {
      if (!is.finite(logs$loss)) {
        cli::cli_inform("Batch {batch}: invalid loss, terminating training.")
        fit$stop_training <- TRUE
      }
    },
    batch_hooks = TRUE
  )
}

#' @rdname callbacks
#' @param schedule A function `(epoch, lr)` returning the learning rate for
#'   the epoch (counted from 0) from the current one. As in keras 2, a
#'   function of one argument is called as `schedule(epoch)`; which form
#'   applies is decided from its arguments when the callback is made.
#' @export
callback_learning_rate_scheduler <- function(schedule, verbose = 0) {
  call <- rlang::current_env()
  if (!is.function(schedule) || !(takes_args(schedule, 2) || takes_args(schedule, 1))) {
    got <- if (is.function(schedule)) describe_function(schedule) else format_value(schedule)
    lcnn_abort(c("{.arg schedule} must be a function of {.code (epoch, lr)} or \\
                  {.code (epoch)}.",
                 x = "Got {got}."), "argument", call = call)
  }
  verbose <- check_callback_verbose(verbose, call)
  # keras 2 calls schedule(epoch, lr), and schedule(epoch) where that raises
  # a TypeError; deciding from the arguments instead does not take an error
  # inside the schedule for a one-argument function.
  rate <- if (takes_args(schedule, 2)) schedule else function(epoch, lr) schedule(epoch)
  new_callback(
    "learning_rate_scheduler",
    on_epoch_begin = function(epoch, logs, fit) {
      lr <- .trainer_learning_rate(fit$trainer)
      new_lr <- rate(epoch, lr)
      if (!is.numeric(new_lr) || length(new_lr) != 1 || !is.finite(new_lr) || new_lr <= 0) {
        lcnn_abort(c("The learning rate schedule must return one positive number.",
                     x = "Got {format_value(new_lr)} at epoch {epoch}."), "argument",
                   call = NULL)
      }
      .trainer_set_learning_rate(fit$trainer, new_lr)
      if (verbose > 0) cli::cli_inform("Epoch {epoch + 1}: learning rate {new_lr}.")
    }
  )
}

#' @export
print.lcnn_callback <- function(x, ...) {
  cat("<callback: ", sub("^lcnn_callback_", "", class(x)[1]), ">\n", sep = "")
  invisible(x)
}
