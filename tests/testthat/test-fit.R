# Position-dependent scaling y[, p] = a[p] * x[, p]: a shared convolution
# cannot fit it, a locally connected layer can.
unshared_task <- function(n = 256, length = 12) {
  a <- seq(-2, 2, length.out = length)
  x <- array(runif(n * length, -1, 1), c(n, length, 1))
  list(x = x, y = array(sweep(x[, , 1], 2, a, `*`), c(n, length, 1)))
}

test_that("fit() learns a task only unshared weights can solve", {
  set.seed(71)
  task <- unshared_task()
  model <- keras_model_sequential(input_shape = c(12, 1)) %>%
    layer_locally_connected_1d(1, 1)
  model %>% compile(optimizer = optimizer_adam(0.05), loss = "mse")
  history <- model %>% fit(task$x, task$y, epochs = 30, batch_size = 32, verbose = 0)
  expect_lt(history$metrics$loss[30], 1e-3)
  expect_lt(history$metrics$loss[30], history$metrics$loss[1] / 100)
  expect_equal(as.vector(get_weights(model)[[1]]), seq(-2, 2, length.out = 12),
               tolerance = 0.02)
})

test_that("fit() ends at the same weights and history on any thread count", {
  # Shuffled batches of 40 (gathered from the epoch's sample-major copy of
  # the data), a locally connected layer on its product kernels with an L2
  # penalty (from the second batch on it applies Adam's step in its
  # backward pass), a dense layer whose 40 rows make two parallel blocks,
  # and a short last batch of 20.
  train <- function(threads) {
    set.seed(12)
    x <- random_array(c(100, 7, 6, 3))
    y <- sample(0:2, 100, replace = TRUE)
    model <- keras_model_sequential(input_shape = c(7, 6, 3)) %>%
      layer_locally_connected_2d(8, 3, activation = "relu",
                                 kernel_regularizer = regularizer_l2(0.01)) %>%
      layer_flatten() %>%
      layer_dense(3, activation = "softmax")
    model %>% compile(optimizer = "adam", loss = "sparse_categorical_crossentropy")
    withr::local_options(lcnn.num_threads = threads)
    history <- model %>% fit(x, y, epochs = 3, batch_size = 40, verbose = 0)
    list(weights = get_weights(model), loss = history$metrics$loss,
         direct = lcnn:::.lc_direct_kernels(model$layers[[1]]$state$geometry))
  }
  one <- train(1L)
  expect_false(one$direct)
  expect_identical(train(2L), one)
  expect_identical(train(3L), one)
})

test_that("validation_split validates on the last samples, before shuffling", {
  set.seed(72)
  task <- unshared_task(n = 100)
  model <- keras_model_sequential(input_shape = c(12, 1)) %>%
    layer_locally_connected_1d(1, 1)
  model %>% compile(optimizer = "sgd", loss = "mse", metrics = "mae")
  history <- model %>% fit(task$x, task$y, epochs = 2, validation_split = 0.25, verbose = 0)
  expect_named(history$metrics, c("loss", "mae", "val_loss", "val_mae"))
  last <- 76:100
  held_out <- evaluate(model, task$x[last, , , drop = FALSE], task$y[last, , , drop = FALSE])
  expect_equal(history$metrics$val_loss[2], held_out$loss, tolerance = 1e-6)
  expect_equal(history$metrics$val_mae[2], held_out$mae, tolerance = 1e-6)
  expect_equal(history$params$steps, 3)
})

test_that("validation_data and evaluate() agree; metrics are resolved as keras does", {
  set.seed(73)
  x <- array(runif(60 * 5), c(60, 5))
  labels <- as.integer(x[, 1] > 0.5)
  model <- keras_model_sequential(input_shape = 5) %>% layer_dense(2, activation = "softmax")
  model %>% compile(optimizer = "adam", loss = "sparse_categorical_crossentropy",
                    metrics = c("accuracy", "acc"))
  h <- model %>% fit(x, labels, epochs = 2, validation_data = list(x, labels), verbose = 0)
  e <- evaluate(model, x, labels)
  expect_named(e, c("loss", "accuracy", "acc"))
  expect_equal(h$metrics$val_loss[2], e$loss, tolerance = 1e-6)
  expect_equal(e$accuracy, mean(max.col(predict(model, x)) - 1 == labels))

  onehot <- diag(2)[labels + 1, ]
  cat_model <- keras_model_sequential(input_shape = 5) %>% layer_dense(2, activation = "softmax")
  cat_model %>% compile(optimizer = "adam", loss = "categorical_crossentropy",
                        metrics = "accuracy")
  set_weights(cat_model, get_weights(model))
  expect_equal(evaluate(cat_model, x, onehot), e[1:2], tolerance = 1e-6)

  bin <- keras_model_sequential(input_shape = 5) %>% layer_dense(1, activation = "sigmoid")
  bin %>% compile(optimizer = "adam", loss = "binary_crossentropy", metrics = "accuracy")
  p <- predict(bin, x)
  expect_equal(evaluate(bin, x, labels)$accuracy, mean((p > 0.5) == labels))
})

test_that("set.seed() reproduces training bit for bit, with shuffling and dropout", {
  train <- function() {
    set.seed(74)
    task <- unshared_task(n = 64)
    model <- keras_model_sequential(input_shape = c(12, 1)) %>%
      layer_locally_connected_1d(4, 3, activation = "relu") %>%
      layer_dropout(0.3) %>%
      layer_flatten() %>%
      layer_dense(12)
    model %>% compile(optimizer = "adam", loss = "mse")
    model %>% fit(task$x, matrix(task$y, 64), epochs = 2, batch_size = 8, verbose = 0)
    get_weights(model)
  }
  expect_identical(train(), train())
})

test_that("a fit() call's copy of the data serves the next call's from lcnn's pool", {
  skip_unless_results_mapped()
  # 1,000 samples of 600 values: a float copy of 2.4 MB, a large page or
  # more, so it comes from the pool of predict()'s results (rcpp_result_memory.cpp).
  data <- function(seed) {
    set.seed(seed)
    list(x = random_array(c(1000, 600)), y = random_array(c(1000, 2)))
  }
  train <- function(d) {
    set.seed(75)
    model <- keras_model_sequential(input_shape = 600) %>% layer_dense(2)
    model %>% compile(optimizer = "sgd", loss = "mse")
    model %>% fit(d$x, d$y, epochs = 1, batch_size = 100, verbose = 0)
    get_weights(model)
  }
  first <- data(1)
  second <- data(2)
  collect_twice()
  expect_equal(.result_memory()[["pooled_bytes"]], 0)
  expected <- train(second)  # on fresh pages
  expect_gte(.result_memory()[["pooled_bytes"]], 4 * 1000 * 600)
  train(first)
  reuses <- .result_memory()[["reuses"]]
  # The second data's copy written over the first's: whatever the copy left
  # unwritten would show.
  expect_identical(train(second), expected)
  expect_equal(.result_memory()[["reuses"]], reuses + 1)
  collect_twice()
  expect_equal(.result_memory()[["pooled_bytes"]], 0)
})

test_that("a fit() call's copy that the pool's budget has no room for is unmapped", {
  skip_unless_results_mapped()
  results <- large_result_model()
  x <- large_result_input()
  collect_twice()
  # Results kept alive until one more would pass the budget: less room is
  # left than the 32 MB copy of 1,000 samples of 8,000 values.
  kept <- list()
  room <- function() .result_memory()[["budget_bytes"]] - .result_memory()[["unfreed_bytes"]]
  while (room() >= large_result_bytes) kept[[length(kept) + 1]] <- predict(results, x)
  before <- .result_memory()
  expect_lt(room(), 4 * 1000 * 8000)
  set.seed(76)
  model <- keras_model_sequential(input_shape = 8000) %>% layer_dense(1)
  model %>% compile(optimizer = "sgd", loss = "mse")
  model %>% fit(random_array(c(1000, 8000)), random_array(c(1000, 1)), epochs = 1,
                batch_size = 100, verbose = 0)
  after <- .result_memory()
  expect_equal(after[["pooled_bytes"]], before[["pooled_bytes"]])
  expect_equal(after[["unfreed_bytes"]], before[["unfreed_bytes"]])
  rm(kept)
  collect_twice()
})

test_that("sample_weight and class_weight weight the loss", {
  set.seed(75)
  task <- two_class_task()
  x <- task$x
  y <- task$y
  model <- task$model
  w <- ifelse(y == 1, 3, 1)
  by_sample <- evaluate(model, x, y, sample_weight = w)$loss
  plain <- evaluate(model, x, y)$loss
  expect_false(isTRUE(all.equal(by_sample, plain)))
  p <- predict(model, x)
  nll <- -log(p[cbind(1:20, y + 1)])
  expect_equal(by_sample, sum(w * nll) / 20, tolerance = 1e-6)
  before <- get_weights(model)
  h1 <- model %>% fit(x, y, epochs = 1, shuffle = FALSE, class_weight = list("1" = 3),
                      verbose = 0)
  after_class <- get_weights(model)
  set_weights(model, before)
  model %>% compile(optimizer = "sgd", loss = "sparse_categorical_crossentropy")
  h2 <- model %>% fit(x, y, epochs = 1, shuffle = FALSE, sample_weight = w, verbose = 0)
  expect_equal(get_weights(model), after_class, tolerance = 1e-6)
  expect_equal(h1$metrics$loss, h2$metrics$loss, tolerance = 1e-6)
})

test_that("evaluate() and fit() after set_weights() start from the weights set", {
  set.seed(81)
  x <- random_array(c(6, 4, 1))
  y <- random_array(c(6, 3, 1))
  zeros <- list(array(0, c(3, 2, 1)), array(0, c(3, 1)))
  trained <- keras_model_sequential(input_shape = c(4, 1)) %>% layer_locally_connected_1d(1, 2)
  trained %>% compile(optimizer = "sgd", loss = "mse")
  trained %>% fit(x, y, epochs = 1, verbose = 0)
  set_weights(trained, zeros)
  expect_equal(evaluate(trained, x, y)$loss, mean(y^2), tolerance = 1e-6)
  fresh <- keras_model_sequential(input_shape = c(4, 1)) %>% layer_locally_connected_1d(1, 2)
  fresh %>% compile(optimizer = "sgd", loss = "mse")
  set_weights(fresh, zeros)
  trained %>% fit(x, y, epochs = 1, shuffle = FALSE, verbose = 0)
  fresh %>% fit(x, y, epochs = 1, shuffle = FALSE, verbose = 0)
  expect_equal(get_weights(trained), get_weights(fresh), tolerance = 1e-6)
})

test_that("non-trainable layers keep their weights", {
  set.seed(76)
  task <- unshared_task(n = 32)
  model <- keras_model_sequential(input_shape = c(12, 1)) %>%
    layer_locally_connected_1d(2, 3, trainable = FALSE) %>%
    layer_flatten() %>%
    layer_dense(12)
  frozen <- get_weights(model)[1:2]
  model %>% compile(optimizer = "adam", loss = "mse")
  model %>% fit(task$x, matrix(task$y, 32), epochs = 1, verbose = 0)
  expect_identical(get_weights(model)[1:2], frozen)
  expect_false(identical(get_weights(model)[[3]], frozen[[1]]))
})

test_that("a model trained, saved and read back predicts the same and trains on", {
  set.seed(77)
  task <- unshared_task(n = 64)
  model <- keras_model_sequential(input_shape = c(12, 1)) %>%
    layer_locally_connected_1d(1, 1)
  model %>% compile(optimizer = "adam", loss = "mse")
  model %>% fit(task$x, task$y, epochs = 2, verbose = 0)
  dir <- withr::local_tempdir()
  saveRDS(model, file.path(dir, "model.rds"))
  saveRDS(task, file.path(dir, "task.rds"))
  script <- file.path(dir, "reload.R")
  writeLines(c(
    "library(lcnn)",
    sprintf("dir <- '%s'", dir),
    "model <- readRDS(file.path(dir, 'model.rds')); task <- readRDS(file.path(dir, 'task.rds'))",
    "saveRDS(predict(model, task$x), file.path(dir, 'predicted.rds'))",
    "set.seed(1); model %>% fit(task$x, task$y, epochs = 1, verbose = 0)",
    "saveRDS(get_weights(model), file.path(dir, 'continued.rds'))"
  ), script)
  status <- system2(file.path(R.home("bin"), "Rscript"), script, stdout = FALSE, stderr = FALSE)
  expect_equal(status, 0)
  expect_equal(readRDS(file.path(dir, "predicted.rds")), predict(model, task$x))
  # Continuing in the fresh session matches continuing here (same optimizer state).
  set.seed(1)
  model %>% fit(task$x, task$y, epochs = 1, verbose = 0)
  expect_equal(readRDS(file.path(dir, "continued.rds")), get_weights(model))
})

test_that("fit() keeps the optimizer state as the engine's own values", {
  # Raw bytes, 4 a value in float32 and 8 in float64: half of R's doubles
  # to copy at the end of each fit() call, and no conversion either way.
  for (dtype in c("float32", "float64")) {
    set.seed(78)
    model <- keras_model_sequential(input_shape = 3, dtype = dtype, name = "saved") %>%
      layer_dense(2)
    model %>% compile(optimizer = "adam", loss = "mse")
    model %>% fit(matrix(runif(30), 10), matrix(runif(20), 10), epochs = 1, verbose = 0)
    slots <- model$optimizer_state$slots
    expect_true(all(vapply(slots, is.raw, logical(1))))
    bytes <- if (dtype == "float32") 4 else 8
    expect_equal(lengths(slots), 2 * bytes * c(6, 2))
  }
  # Doubles, as development builds before saved them, are refused with the
  # model left as it was (as read back, with no trainer).
  state <- model$optimizer_state
  state$slots <- lapply(state$slots, function(slot) numeric(length(slot) / 8))
  model$optimizer_state <- state
  model$trainer <- NULL
  before <- get_weights(model)
  expect_snapshot(error = TRUE,
                  fit(model, matrix(runif(30), 10), matrix(runif(20), 10), verbose = 0))
  expect_null(model$trainer)
  expect_identical(get_weights(model), before)
  model %>% compile(optimizer = "adam", loss = "mse")
  expect_no_error(fit(model, matrix(runif(30), 10), matrix(runif(20), 10), verbose = 0))
})

test_that("history prints, converts to a data frame and plots", {
  set.seed(78)
  task <- unshared_task(n = 40)
  model <- keras_model_sequential(input_shape = c(12, 1)) %>% layer_locally_connected_1d(1, 1)
  model %>% compile(optimizer = "sgd", loss = "mse", metrics = "mae")
  history <- model %>% fit(task$x, task$y, epochs = 3, validation_split = 0.25, verbose = 0)
  df <- as.data.frame(history)
  expect_named(df, c("epoch", "value", "metric", "data"))
  expect_equal(nrow(df), 12)
  expect_equal(levels(df$metric), c("loss", "mae"))
  expect_equal(df$value[df$metric == "mae" & df$data == "validation"], history$metrics$val_mae)
  history$metrics <- lapply(history$metrics, round, 2)
  expect_snapshot(print(history))
  path <- withr::local_tempfile(fileext = ".png")
  grDevices::png(path)
  plot(history)
  grDevices::dev.off()
  expect_gt(file.size(path), 0)
  # Without ggplot2: base graphics.
  base <- withr::local_tempfile(fileext = ".png")
  grDevices::png(base)
  lcnn:::plot_history_base(df)
  grDevices::dev.off()
  expect_gt(file.size(base), 0)
  empty <- lcnn:::new_history(1, 1, 0)
  expect_equal(nrow(as.data.frame(empty)), 0)
  expect_error(plot(empty), class = "lcnn_error_state")
})

test_that("verbose 2 prints one line per epoch", {
  set.seed(79)
  task <- unshared_task(n = 16)
  model <- keras_model_sequential(input_shape = c(12, 1)) %>% layer_locally_connected_1d(1, 1)
  model %>% compile(optimizer = "sgd", loss = "mse")
  out <- capture.output(model %>% fit(task$x, task$y, epochs = 2, verbose = 2))
  expect_length(out, 2)
  expect_match(out, "^Epoch [12]/2 - 1/1 - [0-9]+s - loss: [0-9.]+$")
})

test_that("the engine's scan finds what is not finite, as is.finite() and float32's range do", {
  # Past the scan's first block of 65,536 values, on one and two threads.
  n <- 3 * 65536 + 5
  x <- array(runif(n, -3.4e38, 3.4e38), c(n, 1))
  for (threads in 1:2) {
    withr::local_options(lcnn.num_threads = threads)
    for (dtype in c("float32", "float64")) {
      expect_false(lcnn:::any_not_finite(x, dtype))
      bad <- list(NA_real_, NaN, Inf, -Inf)
      if (dtype == "float32") bad <- c(bad, 3.41e38, -1e300)
      for (at in c(1, 65536, 65537, n)) {
        for (value in bad) {
          y <- x
          y[at] <- value
          expect_true(lcnn:::any_not_finite(y, dtype))
        }
      }
    }
    expect_false(lcnn:::any_not_finite(c(1e300, -1e300, 0), "float64"))
  }
  expect_true(lcnn:::any_not_finite(c(1L, NA), "float32"))
  expect_false(lcnn:::any_not_finite(c(TRUE, FALSE), "float32"))
})

test_that("fit() reads x and y for values not finite once a call: in its copy, else in a scan", {
  # Counted by a tracer on lcnn's scan, which runs in the scan's frame, for
  # calls on x (240 values) and on y (40). Shuffled epochs of more than one
  # batch gather from the engine's copy of x and y, which finds them
  # instead; class indices are scanned all the same.
  counter <- new.env()
  counter$x <- 0
  counter$y <- 0
  x <- matrix(runif(40 * 6), 40)
  y <- matrix(runif(40), 40)
  suppressMessages(trace(
    "any_not_finite", where = asNamespace("lcnn"), print = FALSE,
    tracer = bquote({
      if (length(x) == 240) assign("x", .(counter)$x + 1, envir = .(counter))
      if (length(x) == 40) assign("y", .(counter)$y + 1, envir = .(counter))
    })
  ))
  on.exit(suppressMessages(untrace("any_not_finite", where = asNamespace("lcnn"))), add = TRUE)
  scans <- function() c(counter$x, counter$y)
  model <- keras_model_sequential() %>% layer_dense(2) %>% layer_dense(1)
  model %>% compile(optimizer = "sgd", loss = "mse")
  fit(model, x, y, epochs = 1, verbose = 0)  # builds the model
  expect_equal(scans(), c(0, 0))
  fit(model, x, y, epochs = 1, verbose = 0)
  expect_equal(scans(), c(0, 0))
  fit(model, x, y, epochs = 1, shuffle = FALSE, verbose = 0)
  expect_equal(scans(), c(1, 1))
  fit(model, x, y, epochs = 1, batch_size = 40, verbose = 0)
  expect_equal(scans(), c(2, 2))
  fit(model, x, y, epochs = 1, validation_split = 0.25, verbose = 0)
  expect_equal(scans(), c(3, 3))
  fit(model, x, y, epochs = 0, verbose = 0)
  expect_equal(scans(), c(4, 4))
  evaluate(model, x, y, verbose = 0)
  expect_equal(scans(), c(5, 5))

  classifier <- keras_model_sequential() %>% layer_dense(3, activation = "softmax")
  classifier %>% compile(optimizer = "sgd", loss = "sparse_categorical_crossentropy")
  fit(classifier, x, rep(0:1, 20), epochs = 1, verbose = 0)
  expect_equal(scans(), c(5, 6))
})

# fit() with x or y (`arg`) holding NA, NaN, an infinite value or, for
# float32, one beyond float32's range at each of `at` (row, column) is
# refused with an error naming `arg`, in float32 and float64, leaving the
# model unbuilt, or, after a fit() on the good data, its weights as they
# were.
expect_not_finite_refused <- function(x, y, arg, at) {
  message <- sprintf("`%s` must hold finite values", arg)
  for (dtype in c("float32", "float64")) {
    for (where in at) {
      bad_values <- list(NA_real_, NaN, Inf, -Inf)
      if (dtype == "float32") bad_values <- c(bad_values, -1e39)
      for (missing in bad_values) {
        model <- keras_model_sequential(dtype = dtype) %>% layer_dense(ncol(y))
        model %>% compile(optimizer = "sgd", loss = "mse")
        bad <- list(x = x, y = y)
        bad[[arg]][where[1], where[2]] <- missing
        expect_error(fit(model, bad$x, bad$y, batch_size = 16, verbose = 0), message,
                     class = "lcnn_error_argument")
        expect_false(model$built)
        fit(model, x, y, batch_size = 16, epochs = 1, verbose = 0)
        before <- get_weights(model)
        expect_error(fit(model, bad$x, bad$y, batch_size = 16, verbose = 0), message,
                     class = "lcnn_error_argument")
        expect_identical(get_weights(model), before)
      }
    }
  }
}

test_that("fit()'s copy of y for shuffled epochs finds its values that are not finite", {
  set.seed(84)
  expect_not_finite_refused(matrix(runif(70 * 3), 70), matrix(runif(70 * 2), 70), "y",
                         list(c(1, 1), c(70, 2), c(33, 1)))
  # A logical target's NA, too (y as doubles by then).
  model <- keras_model_sequential(input_shape = 3) %>% layer_dense(1, activation = "sigmoid")
  model %>% compile(optimizer = "sgd", loss = "binary_crossentropy")
  expect_error(fit(model, matrix(runif(70 * 3), 70), c(NA, rep(TRUE, 69)), batch_size = 16,
                   verbose = 0),
               "`y` must hold finite values", class = "lcnn_error_argument")
})

test_that("fit()'s copy of x for shuffled epochs finds its values that are not finite", {
  # 70 samples of 32 features: the copy takes squares of a vector's lanes
  # of samples, then the samples past the last whole square one by one.
  set.seed(83)
  expect_not_finite_refused(matrix(runif(70 * 32), 70), matrix(runif(70), 70), "x",
                         list(c(10, 5), c(70, 32), c(64, 1)))

  withr::defer(k_clear_session())  # the inputs' names count on
  a <- layer_input(shape = 3)
  b <- layer_input(shape = 2)
  both <- keras_model(list(a, b), layer_concatenate(list(a, b)) %>% layer_dense(1))
  both %>% compile(optimizer = "sgd", loss = "mse")
  xs <- list(matrix(runif(60), 20), matrix(runif(40), 20))
  xs[[2]][20, 2] <- NA
  expect_snapshot(error = TRUE, fit(both, xs, matrix(runif(20), 20), batch_size = 8,
                                    verbose = 0))
  xs[[2]][20, 2] <- 0
  xs[[1]][c(3, 9)] <- c(-Inf, 5e38)
  xs[[1]][5, 1] <- NaN
  expect_snapshot(error = TRUE, fit(both, xs, matrix(runif(20), 20), batch_size = 8,
                                    verbose = 0))
})

test_that("fit() finds a missing value past the first block of its data", {
  set.seed(81)
  model <- keras_model_sequential(input_shape = 1000) %>% layer_dense(2)
  model %>% compile(optimizer = "sgd", loss = "mse")
  x <- matrix(runif(100 * 1000), 100)
  y <- matrix(runif(200), 100)
  fit(model, x, y, epochs = 1, verbose = 0)
  before <- get_weights(model)
  bad_x <- x
  bad_x[100, 1000] <- NaN
  expect_error(fit(model, bad_x, y, verbose = 0), "`x` must hold finite values",
               class = "lcnn_error_argument")
  bad_y <- y
  bad_y[100, 2] <- NA
  expect_error(fit(model, x, bad_y, verbose = 0), "`y` must hold finite values",
               class = "lcnn_error_argument")
  expect_identical(get_weights(model), before)
})

test_that("bad training input raises classed errors and changes nothing", {
  set.seed(80)
  task <- unshared_task(n = 10)
  model <- keras_model_sequential() %>% layer_locally_connected_1d(1, 1)
  expect_error(fit(model, task$x, task$y), class = "lcnn_error_state")
  model %>% compile(optimizer = "sgd", loss = "mse")
  bad_x <- task$x
  bad_x[1] <- NA
  bad_y <- task$y
  bad_y[3] <- NaN
  expect_error(fit(model, bad_x, task$y, verbose = 0), class = "lcnn_error_argument")
  expect_error(fit(model, task$x, bad_y, verbose = 0), class = "lcnn_error_argument")
  expect_error(fit(model, task$x, task$y[1:5, , , drop = FALSE], verbose = 0),
               class = "lcnn_error_shape")
  expect_error(fit(model, task$x, task$y, validation_split = 1, verbose = 0),
               class = "lcnn_error_argument")
  expect_error(fit(model, task$x, task$y, sample_weight = rep(-1, 10), verbose = 0),
               class = "lcnn_error_argument")
  expect_false(model$built)

  cls <- keras_model_sequential(input_shape = 3) %>% layer_dense(4, activation = "softmax")
  cls %>% compile(optimizer = "sgd", loss = "sparse_categorical_crossentropy")
  before <- get_weights(cls)
  x <- matrix(runif(30), 10)
  expect_error(fit(cls, x, c(0:8, 4), verbose = 0), class = "lcnn_error_argument")
  expect_error(fit(cls, x, rep(1.5, 10), verbose = 0), class = "lcnn_error_argument")
  cat_model <- keras_model_sequential(input_shape = 3) %>% layer_dense(4, activation = "softmax")
  cat_model %>% compile(optimizer = "sgd", loss = "categorical_crossentropy")
  expect_error(fit(cat_model, x, diag(3)[rep(1:3, length.out = 10), ], verbose = 0),
               class = "lcnn_error_shape")
  expect_identical(get_weights(cls), before)
  expect_error(compile(cls, optimizer = "lbfgs", loss = "mse"), class = "lcnn_error_argument")
  expect_error(compile(cls, optimizer = "sgd", loss = "hinge"), class = "lcnn_error_argument")
  expect_error(compile(cls, optimizer = "sgd", loss = "mse", metrics = "auc"),
               class = "lcnn_error_argument")
  expect_error(compile(cls, optimizer = "sgd"), class = "lcnn_error_argument")
  expect_snapshot(error = TRUE, {
    fit(cls, x, c(0:8, 4), verbose = 0)
    fit(cat_model, x, diag(3)[rep(1:3, length.out = 10), ], verbose = 0)
    fit(cls, x, rep(0, 9), verbose = 0)
    fit(cls, x, rep(0, 10), validation_split = 1.5, verbose = 0)
    compile(cls, optimizer = "sgd", loss = "hinge")
  })
})

test_that("freeze_weights() and unfreeze_weights() act at the next compile", {
  model <- keras_model_sequential(input_shape = c(8, 1)) %>%
    layer_locally_connected_1d(2, 3, name = "local") %>%
    layer_flatten() %>%
    layer_dense(1)
  trainable <- function() vapply(model$layers, function(l) l$trainable, logical(1))
  expect_invisible(freeze_weights(model, to = "local"))
  expect_equal(trainable(), c(FALSE, TRUE, TRUE))
  unfreeze_weights(model)
  freeze_weights(model, from = 2)
  expect_equal(trainable(), c(TRUE, FALSE, FALSE))
  model %>% compile(optimizer = "sgd", loss = "mse")
  before <- get_weights(model)
  model %>% fit(array(runif(40), c(5, 8, 1)), runif(5), epochs = 1, verbose = 0)
  after <- get_weights(model)
  expect_false(identical(after[[1]], before[[1]]))
  expect_identical(after[3:4], before[3:4])
  expect_error(freeze_weights(model, from = 3, to = 1), class = "lcnn_error_argument")
  expect_error(freeze_weights(model, from = "nope"), class = "lcnn_error_argument")
  expect_error(freeze_weights(1), class = "lcnn_error_argument")
})

test_that("an interrupt stops training between batches and keeps finished batches", {
  set.seed(81)
  task <- unshared_task(n = 40)
  model <- keras_model_sequential(input_shape = c(12, 1), dtype = "float64") %>%
    layer_locally_connected_1d(1, 1)
  model %>% compile(optimizer = "sgd", loss = "mse")
  start <- get_weights(model)
  stopper <- callback_lambda(on_batch_end = function(batch, logs) {
    if (batch == 1) rlang::interrupt()
  })
  expect_message(
    history <- model %>% fit(task$x, task$y, epochs = 5, batch_size = 10, shuffle = FALSE,
                             verbose = 0, callbacks = list(stopper)),
    "interrupted"
  )
  expect_length(history$metrics$loss, 0)
  # Exactly two batches were applied: the same as training on them alone.
  twice <- keras_model_sequential(input_shape = c(12, 1), dtype = "float64") %>%
    layer_locally_connected_1d(1, 1)
  set_weights(twice, start)
  twice %>% compile(optimizer = "sgd", loss = "mse")
  twice %>% fit(task$x[1:20, , , drop = FALSE], task$y[1:20, , , drop = FALSE], epochs = 1,
                batch_size = 10, shuffle = FALSE, verbose = 0)
  expect_equal(get_weights(model), get_weights(twice))
})

test_that("verbose = 'auto' is silent under testthat, per epoch under knitr", {
  expect_equal(lcnn:::resolve_verbose("auto", NULL), 0L)
  withr::local_envvar(TESTTHAT = "false")
  expect_equal(lcnn:::resolve_verbose("auto", NULL), 1L)
  withr::local_options(knitr.in.progress = TRUE)
  expect_equal(lcnn:::resolve_verbose("auto", NULL), 2L)
  expect_error(lcnn:::resolve_verbose(3, NULL), class = "lcnn_error_argument")
})

test_that("progress lines show the epoch, steps, time, loss and metrics", {
  set.seed(82)
  task <- unshared_task(n = 24)
  model <- keras_model_sequential(input_shape = c(12, 1)) %>% layer_locally_connected_1d(1, 1)
  model %>% compile(optimizer = "sgd", loss = "mse", metrics = "mae")
  expect_snapshot(
    model %>% fit(task$x, task$y, epochs = 2, batch_size = 8, verbose = 2,
                  validation_split = 0.25),
    transform = function(lines) {
      lines <- gsub("[0-9]+s -", "Ns -", lines)
      gsub("[0-9]+\\.[0-9]{4}", "X.XXXX", lines)
    }
  )
  # verbose = 1 adds a progress bar (on the message stream) before each line.
  out <- capture.output(msgs <- capture.output(
    model %>% fit(task$x, task$y, epochs = 1, batch_size = 8, verbose = 1),
    type = "message"))
  expect_match(out, "^Epoch 1/1 - 3/3 - [0-9]+s - loss: [0-9.]+ - mae: [0-9.]+$")
})

test_that("initial_epoch resumes the epoch count", {
  set.seed(83)
  task <- unshared_task(n = 16)
  model <- keras_model_sequential(input_shape = c(12, 1)) %>% layer_locally_connected_1d(1, 1)
  model %>% compile(optimizer = "sgd", loss = "mse")
  h <- model %>% fit(task$x, task$y, epochs = 5, initial_epoch = 3, verbose = 0)
  expect_equal(h$epoch, 4:5)
  expect_length(h$metrics$loss, 2)
  none <- model %>% fit(task$x, task$y, epochs = 2, initial_epoch = 2, verbose = 0)
  expect_length(none$epoch, 0)
  expect_output(print(none), "No epochs trained")
})

test_that("class_weight weights training samples only, one class axis per sample", {
  set.seed(84)
  task <- two_class_task()
  x <- task$x
  y <- task$y
  model <- task$model
  h <- model %>% fit(x, y, epochs = 1, shuffle = FALSE, validation_split = 0.25,
                     class_weight = list("1" = 10), verbose = 0)
  expect_equal(h$metrics$val_loss, evaluate(model, x[16:20, ], y[16:20])$loss, tolerance = 1e-6)
  seq_model <- keras_model_sequential(input_shape = c(6, 1)) %>%
    layer_locally_connected_1d(2, 2, activation = "softmax")
  seq_model %>% compile(optimizer = "sgd", loss = "sparse_categorical_crossentropy")
  expect_error(fit(seq_model, array(runif(24), c(4, 6, 1)), matrix(0, 4, 5),
                   class_weight = list("0" = 2), verbose = 0),
               class = "lcnn_error_argument")
})

test_that("class_weight names are class indices as written, its weights and sample weights finite", {
  set.seed(86)
  task <- two_class_task()
  x <- task$x
  y <- task$y
  model <- task$model
  before <- get_weights(model)
  expect_snapshot(error = TRUE, {
    fit(model, x, y, class_weight = c("1.5" = 2), verbose = 0)
    fit(model, x, y, class_weight = list("0" = list(1, 2)), verbose = 0)
    fit(model, x, y, class_weight = list("1" = Inf), verbose = 0)
    fit(model, x, y, sample_weight = replace(rep(1, 20), 3, Inf), verbose = 0)
  })
  expect_error(fit(model, x, y, class_weight = c("1" = 2, "01" = 3), verbose = 0),
               class = "lcnn_error_argument")
  expect_error(fit(model, x, y, class_weight = c(" 1" = 2), verbose = 0),
               class = "lcnn_error_argument")
  # "1" still weighs class 1: "sample_weight and class_weight weight the loss".
  expect_identical(get_weights(model), before)
})

test_that("changing the model after training starts the optimizer afresh", {
  set.seed(85)
  x <- matrix(runif(30), 10)
  y <- runif(10)
  model <- keras_model_sequential(input_shape = 3) %>% layer_dense(2)
  model %>% compile(optimizer = "adam", loss = "mse")
  model %>% fit(x, y[seq_len(10)] %o% c(1, 1), epochs = 1, verbose = 0)
  model %>% layer_dense(1)
  expect_silent(model %>% fit(x, y, epochs = 1, verbose = 0))
  expect_equal(model$optimizer_state$iterations, 1)
  # A saved state whose trainable blocks differ is not restored.
  freeze_weights(model, to = 1)
  restored <- readRDS({path <- withr::local_tempfile(); saveRDS(model, path); path})
  restored %>% fit(x, y, epochs = 2, verbose = 0)
  expect_true(all(is.finite(unlist(get_weights(restored)))))
})

deepface_shaped <- function(input_shape, filters, units, dtype = "float32", dropout = 0.2,
                            activation = "relu") {
  inputs <- layer_input(shape = input_shape, dtype = dtype)
  hidden <- inputs %>%
    layer_conv_2d(filters, c(5, 5), activation = activation, name = "C1") %>%
    layer_max_pooling_2d(pool_size = 3, strides = 2, padding = "same", name = "M2") %>%
    layer_conv_2d(filters, c(3, 3), activation = activation, name = "C3") %>%
    layer_locally_connected_2d(filters, c(3, 3), activation = activation, name = "L4") %>%
    layer_locally_connected_2d(filters, c(3, 3), strides = 2, activation = activation,
                               name = "L5") %>%
    layer_locally_connected_2d(filters, c(2, 2), activation = activation, name = "L6") %>%
    layer_flatten(name = "flatten") %>%
    layer_dense(units, activation = activation, name = "F7")
  if (dropout > 0) hidden <- layer_dropout(hidden, dropout, name = "dropout")
  keras_model(inputs, layer_dense(hidden, 4, activation = "softmax", name = "F8"),
              name = "deepface_small")
}

test_that("a DeepFace-shaped stack (conv, max-pool, conv, three locally connected, dense) trains", {
  set.seed(11)
  model <- deepface_shaped(c(24, 24, 3), filters = 8, units = 32)
  expect_snapshot(summary(model))
  n <- 256
  labels <- rep(0:3, length.out = n)
  images <- array(runif(n * 24 * 24 * 3, 0, 0.3), c(n, 24, 24, 3))
  for (i in seq_len(n)) {
    rows <- if (labels[i] %in% c(0, 1)) 3:10 else 15:22
    cols <- if (labels[i] %in% c(0, 2)) 3:10 else 15:22
    images[i, rows, cols, ] <- images[i, rows, cols, ] + 0.7
  }
  model %>% compile(optimizer = optimizer_adam(0.003), loss = "sparse_categorical_crossentropy",
                    metrics = "accuracy")
  before <- evaluate(model, images, labels)
  history <- model %>% fit(images, labels, epochs = 6, batch_size = 32, verbose = 0)
  after <- evaluate(model, images, labels)
  expect_lt(after$loss, before$loss / 2)
  expect_gt(after$accuracy, 0.9)
  expect_equal(dim(predict(model, images[1:3, , , , drop = FALSE])), c(3, 4))
})

test_that("the DeepFace-shaped stack's gradients are exact through every layer", {
  set.seed(12)
  # tanh: relu units at exactly 0 would make central differences disagree.
  model <- deepface_shaped(c(22, 22, 2), filters = 2, units = 3, dtype = "float64",
                           dropout = 0, activation = "tanh")
  model %>% compile(optimizer = "sgd", loss = "sparse_categorical_crossentropy")
  expect_gradients_match(model, random_array(c(3, 22, 22, 2)), c(0, 3, 1), coords = 6)
})

test_that("fit(), evaluate() and predict() read arrays given dims on a shared vector in place", {
  # `dim<-` on a vector that another name still holds gives an ALTREP
  # wrapper around the same values. The engine reads them in place: asking
  # R for writable data made it duplicate the whole array on every call.
  n <- 2000L
  x_values <- runif(n * 100)
  y_values <- runif(n * 50)
  wrapped <- function(values, dims) {
    shaped <- values
    dim(shaped) <- dims
    shaped
  }
  x <- function() wrapped(x_values, c(n, 100, 1))
  y <- function() wrapped(y_values, c(n, 50, 1))
  model <- keras_model_sequential(input_shape = c(100, 1)) %>%
    layer_locally_connected_1d(filters = 1, kernel_size = 51)
  model %>% compile(optimizer = optimizer_sgd(learning_rate = 0.01), loss = "mse")
  # The first calls load and compile R code and make the trainer.
  fit(model, array(x_values, c(n, 100, 1)), array(y_values, c(n, 50, 1)), epochs = 1,
      batch_size = 500, verbose = 0)
  evaluate(model, array(x_values, c(n, 100, 1)), array(y_values, c(n, 50, 1)), verbose = 0)
  # Vcells (8 bytes each) that R allocated at the peak of `expr` beyond
  # those in use before it; x holds n * 100, y n * 50.
  peak_vcells <- function(expr) {
    before <- gc(reset = TRUE)["Vcells", "used"]
    force(expr)
    after <- gc()
    after["Vcells", which(colnames(after) == "max used")] - before
  }
  allowed <- n * 100 / 4
  # Fresh wrappers for each call, made before it is measured: whether
  # `dim<-` wraps or copies depends on where it runs.
  wrappers <- function() {
    made <- peak_vcells(pair <- list(x = x(), y = y()))
    if (made > allowed) skip("`dim<-` copied the values instead of wrapping them")
    pair
  }
  data <- wrappers()
  expect_lt(peak_vcells(fit(model, data$x, data$y, epochs = 1, batch_size = 500, verbose = 0)),
            allowed)
  data <- wrappers()
  expect_lt(peak_vcells(evaluate(model, data$x, data$y, batch_size = 500, verbose = 0)), allowed)
  data <- wrappers()
  expect_lt(peak_vcells(predict(model, data$x, batch_size = 500)), n * 50 + allowed)
})

test_that("a sparse loss refuses metrics that read one target per class", {
  set.seed(31)
  model <- keras_model_sequential(input_shape = 2) %>% layer_dense(10, activation = "softmax")
  model %>% compile(optimizer = "adam", loss = "mse")
  before <- model$compiled
  for (metric in c("mae", "mse", "mean_squared_error", "categorical_accuracy",
                   "binary_accuracy")) {
    expect_error(compile(model, optimizer = "adam", loss = "sparse_categorical_crossentropy",
                         metrics = c("accuracy", metric)),
                 class = "lcnn_error_argument")
  }
  expect_identical(model$compiled, before)
  # Class-index metrics: "accuracy" resolves to sparse_categorical_accuracy.
  model %>% compile(optimizer = "adam", loss = loss_sparse_categorical_crossentropy(),
                    metrics = c("accuracy", "acc", "sparse_categorical_accuracy"))
  x <- matrix(runif(100), 50, 2)
  y <- rep(0:9, length.out = 50)
  scores <- evaluate(model, x, y, verbose = 0)
  right <- mean(max.col(predict(model, x), ties.method = "first") - 1 == y)
  expect_equal(unlist(scores[-1]), c(accuracy = right, acc = right,
                                     sparse_categorical_accuracy = right))

  # Per output of a model with several, in order or by name.
  inputs <- layer_input(shape = 2)
  class_out <- layer_dense(inputs, 3, activation = "softmax", name = "class")
  value_out <- layer_dense(inputs, 1, name = "value")
  two <- keras_model(inputs, list(class_out, value_out))
  losses <- list("sparse_categorical_crossentropy", "mse")
  expect_error(compile(two, loss = losses, metrics = "mae"), class = "lcnn_error_argument")
  expect_error(compile(two, loss = losses, metrics = list("mae", "accuracy")),
               class = "lcnn_error_argument")
  expect_error(compile(two, loss = losses, metrics = list(value = "mae", class = "mse")),
               class = "lcnn_error_argument")
  two %>% compile(loss = losses, metrics = list(class = "accuracy", value = "mae"))
  expect_named(evaluate(two, x, list(rep(0:2, length.out = 50), runif(50))),
               c("loss", "class_loss", "value_loss", "class_accuracy", "value_mae"))

  # Compiled before it is built: fit() refuses before it builds the model.
  unbuilt <- keras_model_sequential() %>% layer_dense(10, activation = "softmax")
  unbuilt %>% compile(optimizer = "adam", loss = "sparse_categorical_crossentropy",
                      metrics = "mae")
  expect_error(fit(unbuilt, x, y, verbose = 0), class = "lcnn_error_argument")
  expect_false(unbuilt$built)
  expect_snapshot(error = TRUE, {
    compile(model, optimizer = "adam", loss = "sparse_categorical_crossentropy",
            metrics = c("mae", "accuracy", "mse"))
    compile(two, loss = losses, metrics = list(value = "mae", class = "categorical_accuracy"))
    fit(unbuilt, x, y, verbose = 0)
  })
})

test_that("fit(), evaluate() and compile() refuse arguments they do not take", {
  model <- keras_model_sequential(input_shape = 2) %>% layer_dense(1)
  model %>% compile(optimizer = "sgd", loss = "mse")
  before <- model$compiled
  weights <- get_weights(model)
  x <- matrix(runif(20), 10, 2)
  y <- runif(10)
  expect_error(fit(model, x, y, batchsize = 1, verbose = 0), class = "lcnn_error_argument")
  expect_identical(get_weights(model), weights)
  expect_error(evaluate(model, x, y, sample_weights = rep(1, 10)),
               class = "lcnn_error_argument")
  expect_error(compile(model, "adam", "mae", foo = 1), class = "lcnn_error_argument")
  expect_identical(model$compiled, before)
  # keras's live plot of the metrics is accepted and has nothing to show.
  history <- fit(model, x, y, epochs = 1, view_metrics = FALSE, verbose = 0)
  expect_length(history$metrics$loss, 1)
  expect_error(fit(model, x, y, view_metrics = "yes", verbose = 0),
               class = "lcnn_error_argument")
  expect_snapshot(error = TRUE, {
    fit(model, x, y, batchsize = 1, verbose = 0)
    evaluate(model, x, y, sample_weights = rep(1, 10), 3)
    compile(model, "adam", "mae", NULL, NULL, "cpu", 1)
  })
})

test_that("evaluate() of something not a model is a classed error", {
  expect_error(evaluate(list(), matrix(1, 2, 2), 1:2), class = "lcnn_error_argument")
  expect_snapshot(error = TRUE, evaluate(list(), matrix(1, 2, 2), 1:2))
})
