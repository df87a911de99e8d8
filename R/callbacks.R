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
  monitor <- check_name(monitor, call = call)
  min_delta <- abs(check_number(min_delta, call = call))
  patience <- check_count(patience, min = 0, call = call)
  mode <- resolve_mode(mode, monitor, call)
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
format_filepath <- function(filepath, epoch, logs) {
  values <- c(list(epoch = epoch + 1), logs)
  pattern <- "\\{([A-Za-z_][A-Za-z0-9_]*)(:([^}]*))?\\}"
  matches <- gregexpr(pattern, filepath)[[1]]
  if (matches[1] == -1) return(filepath)
  pieces <- regmatches(filepath, list(matches))[[1]]
  out <- vapply(pieces, function(p) {
    parts <- regmatches(p, regexec(pattern, p))[[1]]
    value <- values[[parts[2]]]
    if (is.null(value)) return(p)
    spec <- if (nzchar(parts[4])) parts[4] else if (parts[2] == "epoch") "d" else "g"
    if (grepl("d$", spec)) value <- as.integer(round(value))
    sprintf(paste0("%", spec), value)
  }, character(1))
  regmatches(filepath, list(matches)) <- list(out)
  filepath
}

#' @rdname callbacks
#' @param filepath Where to save; may hold `{epoch}` and log placeholders.
#' @param save_best_only Save only when `monitor` improves.
#' @param save_weights_only Save the weights list rather than the model.
#' @param save_freq `"epoch"` (the only choice).
#' @export
callback_model_checkpoint <- function(filepath, monitor = "val_loss", verbose = 0,
                                      save_best_only = FALSE, save_weights_only = FALSE,
                                      mode = "auto", save_freq = "epoch") {
  call <- rlang::current_env()
  filepath <- check_name(filepath, call = call)
  monitor <- check_name(monitor, call = call)
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
  monitor <- check_name(monitor, call = call)
  factor <- check_number(factor, positive = TRUE, call = call)
  if (factor >= 1) {
    lcnn_abort(c("{.arg factor} must be below 1.", x = "Got {factor}."), "argument",
               call = call)
  }
  patience <- check_count(patience, min = 0, call = call)
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
  filename <- check_name(filename, call = call)
  separator <- check_name(separator, call = call)
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
#' @export
callback_lambda <- function(on_epoch_begin = NULL, on_epoch_end = NULL, on_batch_begin = NULL,
                            on_batch_end = NULL, on_train_begin = NULL, on_train_end = NULL) {
  call <- rlang::current_env()
  user <- list(on_epoch_begin = on_epoch_begin, on_epoch_end = on_epoch_end,
               on_batch_begin = on_batch_begin, on_batch_end = on_batch_end,
               on_train_begin = on_train_begin, on_train_end = on_train_end)
  for (name in names(user)) {
    if (!is.null(user[[name]]) && !is.function(user[[name]])) {
      lcnn_abort(c("{.arg {name}} must be a function or NULL.",
                   x = "Got {format_value(user[[name]])}."), "argument", call = call)
    }
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
#'   the epoch (counted from 0).
#' @export
callback_learning_rate_scheduler <- function(schedule, verbose = 0) {
  call <- rlang::current_env()
  if (!is.function(schedule)) {
    lcnn_abort(c("{.arg schedule} must be a function of (epoch, lr).",
                 x = "Got {format_value(schedule)}."), "argument", call = call)
  }
  new_callback(
    "learning_rate_scheduler",
    on_epoch_begin = function(epoch, logs, fit) {
      lr <- .trainer_learning_rate(fit$trainer)
      new_lr <- schedule(epoch, lr)
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
