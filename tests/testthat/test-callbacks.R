# A model whose validation loss can be steered: fit y = x with one weight.
line_model <- function(optimizer = optimizer_sgd(0.1)) {
  model <- keras_model_sequential(input_shape = 1, dtype = "float64") %>%
    layer_dense(1, use_bias = FALSE, kernel_initializer = "zeros")
  model %>% compile(optimizer = optimizer, loss = "mse")
  model
}
line_x <- matrix(seq(-1, 1, length.out = 8))

# The weight of line_model() after SGD steps on batches of `batch_size`
# rows of line_x in order, from weight `w` before batch `first` (from 0):
# one value per step.
line_steps <- function(w, steps, first = 0, batch_size = 2, lr = 0.1) {
  batches <- split(line_x[, 1], ceiling(seq_along(line_x) / batch_size))
  out <- numeric(steps)
  for (s in seq_len(steps)) {
    x <- batches[[(first + s - 1) %% length(batches) + 1]]
    w <- w - lr * 2 * (w - 1) * mean(x^2)
    out[s] <- w
  }
  out
}

test_that("get_weights() in a callback returns the weights training has reached", {
  model <- line_model()
  batch_weights <- numeric()
  batch_predictions <- numeric()
  epoch_weights <- numeric()
  model %>% fit(line_x, line_x, epochs = 2, batch_size = 2, shuffle = FALSE, verbose = 0,
                callbacks = callback_lambda(
                  on_batch_end = function(batch, logs) {
                    batch_weights <<- c(batch_weights, get_weights(model)[[1]])
                    batch_predictions <<- c(batch_predictions, predict(model, matrix(1)))
                  },
                  on_epoch_end = function(epoch, logs) {
                    epoch_weights <<- c(epoch_weights, get_weights(model)[[1]])
                  }))
  expected <- line_steps(0, 8)
  expect_equal(batch_weights, expected)
  expect_equal(batch_predictions, expected)
  expect_equal(epoch_weights, expected[c(4, 8)])
  expect_equal(get_weights(model)[[1]][1, 1], expected[8])
})

test_that("set_weights() in a callback sets the weights training goes on from", {
  model <- line_model()
  model %>% fit(line_x, line_x, epochs = 1, batch_size = 2, shuffle = FALSE, verbose = 0,
                callbacks = callback_lambda(on_batch_end = function(batch, logs) {
                  if (batch == 1) set_weights(model, list(matrix(3)))
                }))
  # From weight 3 after batch 1, the steps of batches 2 and 3.
  expect_equal(get_weights(model)[[1]][1, 1], line_steps(3, 2, first = 2)[2])

  zeros <- lapply(get_weights(model), `*`, 0)
  model %>% fit(line_x, line_x, epochs = 1, verbose = 0,
                callbacks = callback_lambda(on_epoch_end = function(epoch, logs) {
                  set_weights(model, zeros)
                }))
  expect_equal(get_weights(model), zeros)
  expect_equal(predict(model, line_x), line_x * 0)

  # Set at the end of the first epoch, trained on in the second.
  model %>% fit(line_x, line_x, epochs = 2, batch_size = 2, shuffle = FALSE, verbose = 0,
                callbacks = callback_lambda(on_epoch_end = function(epoch, logs) {
                  if (epoch == 0) set_weights(model, list(matrix(-2)))
                }))
  expect_equal(get_weights(model)[[1]][1, 1], line_steps(-2, 4)[4])
})

test_that("early stopping stops after `patience` epochs without improvement", {
  model <- line_model()
  # Validating against the wrong target: val_loss grows as training improves.
  h <- model %>% fit(line_x, line_x, epochs = 20, verbose = 0, shuffle = FALSE,
                     validation_data = list(line_x, -line_x),
                     callbacks = list(callback_early_stopping(patience = 2)))
  expect_length(h$metrics$loss, 3)
  expect_equal(which.min(h$metrics$val_loss), 1)
})

test_that("early stopping restores the best weights when asked", {
  model <- line_model()
  h <- model %>% fit(line_x, line_x, epochs = 20, verbose = 0, shuffle = FALSE,
                     validation_data = list(line_x, -line_x),
                     callbacks = list(callback_early_stopping(patience = 2,
                                                              restore_best_weights = TRUE)))
  expect_length(h$metrics$loss, 3)
  # The best epoch was the first: the weights are those after one epoch.
  best <- line_model()
  best %>% fit(line_x, line_x, epochs = 1, verbose = 0, shuffle = FALSE)
  expect_equal(get_weights(model), get_weights(best))
})

test_that("the learning rate scheduler and reduce-on-plateau change the rate", {
  model <- line_model()
  seen <- numeric()
  sched <- callback_learning_rate_scheduler(function(epoch, lr) {
    seen <<- c(seen, lr)
    0.1 / (epoch + 1)
  })
  model %>% fit(line_x, line_x, epochs = 3, verbose = 0, callbacks = list(sched))
  expect_equal(seen, c(0.1, 0.1, 0.05))
  expect_equal(model$optimizer_state$learning_rate, 0.1 / 3)

  plateau <- line_model()
  plateau %>% fit(line_x, line_x, epochs = 4, verbose = 0,
                  validation_data = list(line_x, -line_x),
                  callbacks = list(callback_reduce_lr_on_plateau(patience = 1, factor = 0.5)))
  # val_loss worsens every epoch: with patience 1 the rate halves after each
  # of epochs 2, 3 and 4.
  expect_equal(plateau$optimizer_state$learning_rate, 0.1 * 0.5^3)
})

test_that("checkpoints, the CSV logger and lambdas see every epoch", {
  dir <- withr::local_tempdir()
  model <- line_model()
  epochs_seen <- integer()
  trained <- FALSE
  model %>% fit(
    line_x, line_x, epochs = 3, verbose = 0, validation_split = 0.25,
    callbacks = list(
      callback_model_checkpoint(file.path(dir, "model-{epoch:02d}-{val_loss:.3f}.rds")),
      callback_model_checkpoint(file.path(dir, "best.rds"), save_best_only = TRUE,
                                save_weights_only = TRUE),
      callback_csv_logger(file.path(dir, "log.csv")),
      callback_lambda(on_epoch_end = function(epoch, logs) epochs_seen <<- c(epochs_seen, epoch),
                      on_train_end = function(logs) trained <<- TRUE)
    )
  )
  expect_equal(epochs_seen, 0:2)
  expect_true(trained)
  files <- list.files(dir, pattern = "^model-")
  expect_length(files, 3)
  expect_match(files[1], "^model-01-[0-9]+\\.[0-9]{3}\\.rds$")
  restored <- readRDS(file.path(dir, files[3]))
  expect_equal(get_weights(restored), get_weights(model))
  expect_true(is.list(readRDS(file.path(dir, "best.rds"))))
  log <- utils::read.csv(file.path(dir, "log.csv"))
  expect_named(log, c("epoch", "loss", "val_loss"))
  expect_equal(log$epoch, 0:2)
})

test_that("batch hooks run between batches; terminate_on_nan stops at a NaN loss", {
  model <- line_model()
  batches <- integer()
  model %>% fit(line_x, line_x, epochs = 1, batch_size = 2, verbose = 0,
                callbacks = callback_lambda(on_batch_end = function(batch, logs) {
                  batches <<- c(batches, batch)
                }))
  expect_equal(batches, 0:3)

  exploding <- line_model(optimizer_sgd(1e6))
  expect_message(
    h <- exploding %>% fit(line_x * 1e3, line_x, epochs = 5, batch_size = 1, verbose = 0,
                           callbacks = list(callback_terminate_on_nan())),
    "invalid loss"
  )
  expect_lt(length(h$metrics$loss), 5)
})

test_that("bad callbacks raise classed errors", {
  model <- line_model()
  expect_error(fit(model, line_x, line_x, callbacks = list(1), verbose = 0),
               class = "lcnn_error_argument")
  expect_error(callback_early_stopping(mode = "up"), class = "lcnn_error_argument")
  expect_error(callback_reduce_lr_on_plateau(factor = 2), class = "lcnn_error_argument")
  expect_error(callback_lambda(on_epoch_end = 3), class = "lcnn_error_argument")
  expect_error(callback_learning_rate_scheduler(0.1), class = "lcnn_error_argument")
  expect_warning(fit(model, line_x, line_x, epochs = 1, verbose = 0,
                     callbacks = list(callback_early_stopping())),
                 class = "lcnn_warning_monitor")
})

test_that("callback arguments are checked when the callback is made", {
  dir <- withr::local_tempdir()
  path <- file.path(dir, "log.csv")
  bad <- list(
    quote(callback_model_checkpoint(NULL)),
    quote(callback_model_checkpoint("m.rds", monitor = NULL)),
    quote(callback_model_checkpoint("m.rds", verbose = "x")),
    quote(callback_csv_logger(NULL)),
    quote(callback_csv_logger(path, separator = NULL)),
    quote(callback_csv_logger(path, separator = "")),
    quote(callback_reduce_lr_on_plateau(monitor = NULL)),
    quote(callback_reduce_lr_on_plateau(verbose = 2)),
    quote(callback_early_stopping(monitor = NULL)),
    quote(callback_early_stopping(monitor = c("loss", "val_loss"))),
    quote(callback_early_stopping(baseline = "a")),
    quote(callback_early_stopping(baseline = NA)),
    quote(callback_early_stopping(baseline = c(1, 2))),
    quote(callback_early_stopping(verbose = "x")),
    quote(callback_early_stopping(verbose = NA)),
    quote(callback_learning_rate_scheduler(function(epoch, lr) lr, verbose = -1))
  )
  for (expr in bad) {
    expect_error(eval(expr), class = "lcnn_error_argument", label = deparse(expr))
  }
  expect_snapshot(error = TRUE, callback_model_checkpoint(NULL))
  expect_snapshot(error = TRUE, callback_csv_logger("log.csv", separator = NULL))
  expect_snapshot(error = TRUE, callback_early_stopping(monitor = NULL))
  expect_snapshot(error = TRUE, callback_early_stopping(baseline = NA))
  expect_snapshot(error = TRUE, callback_early_stopping(verbose = "x"))
  # keras's values still pass.
  expect_s3_class(callback_early_stopping(baseline = 0.5, verbose = 1), "lcnn_callback")
  expect_s3_class(callback_early_stopping(verbose = TRUE), "lcnn_callback")
})

test_that("checkpoint file names are checked when the callback is made", {
  expect_snapshot(error = TRUE, callback_model_checkpoint("m_{loss:.2q}.rds"))
  expect_snapshot(error = TRUE, callback_model_checkpoint("m_{epoch:x}_{loss:x}.rds"))
  expect_error(callback_model_checkpoint("m_{loss:%}.rds"), class = "lcnn_error_argument")
  expect_error(callback_model_checkpoint("m_{val_loss:*d}.rds"), class = "lcnn_error_argument")
  # Names unknown until fit() are fine, and so are keras's formats.
  expect_s3_class(callback_model_checkpoint("m_{epoch:03d}_{val_accuracy:.4f}_{other}.rds"),
                  "lcnn_callback")
  expect_equal(lcnn:::format_filepath("m_{epoch:03d}_{loss:.2f}_{other}.rds", 4,
                                      list(loss = 0.123)),
               "m_005_0.12_{other}.rds")
})

test_that("callback functions must take the arguments they are called with", {
  expect_snapshot(error = TRUE, callback_lambda(on_epoch_end = function() 1))
  expect_snapshot(error = TRUE, callback_lambda(on_train_begin = function(a, b) 1))
  expect_error(callback_lambda(on_batch_end = function(batch) 1), class = "lcnn_error_argument")
  expect_error(callback_lambda(on_batch_begin = function(batch, logs, extra) 1),
               class = "lcnn_error_argument")
  expect_snapshot(error = TRUE, callback_learning_rate_scheduler(function() 0.1))
  expect_snapshot(error = TRUE, callback_learning_rate_scheduler(function(a, b, c) 0.1))

  # `...`, defaults and primitives are fine; the functions are still called.
  seen <- list()
  model <- line_model()
  model %>% fit(line_x, line_x, epochs = 2, verbose = 0, callbacks = callback_lambda(
    on_epoch_end = function(...) seen$epoch <<- c(seen$epoch, ..1),
    on_batch_end = function(batch, logs, extra = 1) seen$batch <<- c(seen$batch, batch),
    on_train_end = function(logs, ...) seen$end <<- TRUE,
    on_train_begin = invisible
  ))
  expect_equal(seen[c("epoch", "batch", "end")], list(epoch = 0:1, batch = c(0, 0), end = TRUE))
})

test_that("a learning rate schedule of one argument is called with the epoch", {
  model <- line_model()
  epochs <- numeric()
  sched <- callback_learning_rate_scheduler(function(epoch) {
    epochs <<- c(epochs, epoch)
    0.01 * (epoch + 1)
  })
  model %>% fit(line_x, line_x, epochs = 3, verbose = 0, callbacks = list(sched))
  expect_equal(epochs, 0:2)
  expect_equal(model$optimizer_state$learning_rate, 0.03)
  # An error inside a schedule of one argument is its own, not a retry.
  failing <- callback_learning_rate_scheduler(function(epoch) stop("inside the schedule"))
  expect_error(fit(model, line_x, line_x, epochs = 1, verbose = 0, callbacks = list(failing)),
               "inside the schedule")
})

test_that("early stopping waits while the monitored value improves", {
  model <- line_model()
  h <- model %>% fit(line_x, line_x, epochs = 6, verbose = 0, shuffle = FALSE,
                     callbacks = list(callback_early_stopping(monitor = "loss")))
  expect_length(h$metrics$loss, 6)
})

test_that("an error in a callback keeps R's weights in step with the engine", {
  model <- line_model()
  boom <- callback_lambda(on_epoch_end = function(epoch, logs) if (epoch == 1) stop("boom"))
  expect_error(fit(model, line_x, line_x, epochs = 3, verbose = 0, callbacks = list(boom)),
               "boom")
  expect_equal(evaluate(model, line_x, line_x)$loss, mean((predict(model, line_x) - line_x)^2))
})
