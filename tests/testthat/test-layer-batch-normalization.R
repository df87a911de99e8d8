# Batch normalization: naive references in float64 for inference, training
# and the moving statistics; gradients through the batch statistics; fit()
# and frozen layers; summary(); tf-keras fixtures (bn_*.json); errors.

# A sequential model of one batch normalization layer with `weights`.
bn_model <- function(input_shape, ..., dtype = "float64") {
  keras_model_sequential(input_shape = input_shape, dtype = dtype) %>%
    layer_batch_normalization(...)
}

# Random weights for `channels` channels: gamma, beta as asked, then the
# moving mean and variance.
bn_weights <- function(channels, scale = TRUE, center = TRUE) {
  c(if (scale) list(array(runif(channels, 0.5, 1.5))),
    if (center) list(array(runif(channels, -1, 1))),
    list(array(runif(channels, -1, 1)), array(runif(channels, 0.5, 1.5))))
}

# Weights as plain vectors: waldo 0.4.0 fails to print differences of 1-D
# arrays.
as_vectors <- function(weights) lapply(weights, as.vector)

# Each sample's values in C (row-major) order, one row per sample: what
# layer_flatten() gives.
c_rows <- function(a) {
  r <- length(dim(a))
  matrix(aperm(a, c(1, if (r > 1) r:2)), dim(a)[1])
}

# One training-mode forward of a batch normalization layer (made with ...)
# on x, as fit() runs it: returns its output, one row per sample in C order,
# and its weights after the forward (the moving statistics updated). The
# output is read through a zero dense layer after it with n units: under mse
# against the n x n identity, that layer's kernel gradient is -2 / n^2 times
# the transposed output.
bn_training_forward <- function(x, ..., dtype = "float64") {
  n <- dim(x)[1]
  model <- bn_model(dim(x)[-1], ..., dtype = dtype) %>%
    layer_flatten() %>%
    layer_dense(n, use_bias = FALSE, kernel_initializer = "zeros")
  model %>% compile(optimizer = "sgd", loss = "mse")
  t <- trainer_for(model, x, diag(n))
  grads <- lcnn:::.trainer_gradients(t$trainer, t$data$x, t$data$y, NULL, n, c(1, 2), 1L)
  kernel <- matrix(grads[[length(grads)]], ncol = n)
  params <- lcnn:::.trainer_parameters(t$trainer)
  list(output = t(kernel) * (-n^2 / 2), weights = params[-length(params)])
}

test_that("the layer composes bare, in a model and on an array", {
  k_clear_session()
  layer <- layer_batch_normalization()
  expect_s3_class(layer, "lcnn_layer")
  expect_equal(layer$type, "BatchNormalization")
  expect_equal(layer$name, "batch_normalization")
  expect_false(layer$built)
  model <- keras_model_sequential(input_shape = c(4, 3)) %>% layer_batch_normalization(axis = 1)
  expect_equal(model$output_shape, list(NULL, 4L, 3L))
  expect_equal(lapply(get_weights(model), dim), rep(list(4L), 4))
  # A fresh layer at inference: mean 0, variance 1.
  x <- matrix(c(1, -2, 3, 4.5), 2)
  expect_equal(layer_batch_normalization(x), x / sqrt(1 + 0.001), tolerance = 1e-6)
  same <- keras_model_sequential(input_shape = 2) |> layer_batch_normalization(momentum = 0.5)
  expect_equal(same$layers[[1]]$config$momentum, 0.5)
})

test_that("inference output uses the moving statistics, on every rank and axis", {
  set.seed(201)
  cases <- list(
    list(dims = c(5, 3), axis = -1), list(dims = c(5, 3), axis = 1, scale = FALSE),
    list(dims = c(4, 3, 2), axis = 1), list(dims = c(4, 3, 2), axis = -1, center = FALSE),
    list(dims = c(3, 2, 3, 4), axis = 1), list(dims = c(3, 2, 3, 4), axis = 2),
    list(dims = c(3, 2, 3, 4), axis = -1, scale = FALSE, center = FALSE)
  )
  for (cs in cases) {
    scale <- cs$scale %||% TRUE
    center <- cs$center %||% TRUE
    rank <- length(cs$dims)
    axis <- if (cs$axis < 0) rank + cs$axis else cs$axis
    w <- bn_weights(cs$dims[axis + 1], scale, center)
    model <- bn_model(cs$dims[-1], axis = cs$axis, center = center, scale = scale,
                      epsilon = 0.01, weights = w)
    x <- random_array(cs$dims, -2, 3)
    n_stats <- length(w)
    expected <- ref_batch_norm(x, axis, w[[n_stats - 1]], w[[n_stats]],
                               gamma = if (scale) w[[1]], beta = if (center) w[[1 + scale]],
                               epsilon = 0.01)
    expect_close(predict(model, x), expected)
  }
})

test_that("training output and moving statistics follow the batch statistics", {
  set.seed(202)
  cases <- list(
    list(dims = c(6, 3), axis = -1), list(dims = c(5, 4, 3), axis = 1),
    list(dims = c(5, 4, 3), axis = -1, scale = FALSE), list(dims = c(4, 3, 2, 2), axis = 1),
    list(dims = c(4, 3, 2, 2), axis = 2, center = FALSE),
    list(dims = c(4, 3, 2, 2), axis = -1, scale = FALSE, center = FALSE)
  )
  for (cs in cases) {
    scale <- cs$scale %||% TRUE
    center <- cs$center %||% TRUE
    rank <- length(cs$dims)
    axis <- if (cs$axis < 0) rank + cs$axis else cs$axis
    w <- bn_weights(cs$dims[axis + 1], scale, center)
    x <- random_array(cs$dims, -2, 3)
    got <- bn_training_forward(x, axis = cs$axis, center = center, scale = scale,
                               momentum = 0.7, weights = w)
    batch <- ref_batch_moments(x, axis)
    expected <- ref_batch_norm(x, axis, batch$mean, batch$variance,
                               gamma = if (scale) w[[1]], beta = if (center) w[[1 + scale]])
    expect_equal(got$output, c_rows(expected), tolerance = 1e-10)
    k <- length(w)
    # float64 layers never take Keras's fused kernel: the biased variance.
    expect_equal(got$weights[[k - 1]], 0.7 * as.vector(w[[k - 1]]) + 0.3 * batch$mean,
                 tolerance = 1e-12)
    expect_equal(got$weights[[k]], 0.7 * as.vector(w[[k]]) + 0.3 * batch$variance,
                 tolerance = 1e-12)
    expect_equal(got$weights[seq_len(k - 2)], as_vectors(w[seq_len(k - 2)]))
  }
})

test_that("the moving variance follows the unbiased variance exactly where Keras fuses", {
  set.seed(203)
  moved_variance <- function(dims, axis, ..., dtype = "float32") {
    x <- random_array(dims, -2, 3)
    channels <- dims[if (axis < 0) length(dims) + axis + 1 else axis + 1]
    w <- list(array(rep(0, channels)), array(rep(1, channels)))
    got <- bn_training_forward(x, axis = axis, center = FALSE, scale = FALSE, momentum = 0,
                               weights = w, ..., dtype = dtype)
    batch <- ref_batch_moments(x, if (axis < 0) length(dims) + axis else axis)
    ratio <- got$weights[[2]] / batch$variance
    expect_equal(ratio, rep(ratio[1], channels), tolerance = 1e-5)
    round(ratio[1] * (batch$n - 1), 3)
  }
  # Each call returns n * (moved variance / biased batch variance) rounded,
  # n - 1 values per channel: n for the unbiased variance, n - 1 for the
  # biased one. 4D and 5D float32 inputs on axis 1 or the last: unbiased.
  expect_equal(moved_variance(c(2, 3, 3, 4), -1), 18)
  expect_equal(moved_variance(c(2, 3, 3, 4), 1), 24)
  expect_equal(moved_variance(c(2, 2, 3, 3, 2), 1), 36)
  expect_equal(moved_variance(c(2, 2, 3, 3, 2), 4), 36)
  # Everything else: biased.
  expect_equal(moved_variance(c(2, 3, 3, 4), 2), 23)
  expect_equal(moved_variance(c(6, 4), -1), 5)
  expect_equal(moved_variance(c(3, 4, 2), -1), 11)
  expect_equal(moved_variance(c(2, 3, 3, 4), -1, dtype = "float64"), 17)
  expect_equal(moved_variance(c(2, 3, 3, 4), -1, synchronized = TRUE), 17)
})

test_that("axis counts from the batch as in keras: axis = 1 for channels_first images", {
  set.seed(204)
  x_first <- random_array(c(3, 2, 4, 5))
  x_last <- aperm(x_first, c(1, 3, 4, 2))
  w <- bn_weights(2)
  first <- bn_model(c(2, 4, 5), axis = 1, weights = w)
  last <- bn_model(c(4, 5, 2), weights = w)
  expect_close(aperm(predict(first, x_first), c(1, 3, 4, 2)), predict(last, x_last))
  # Negative axes count from the end: -3 is axis 1 of a 4D input.
  expect_equal(predict(bn_model(c(2, 4, 5), axis = -3, weights = w), x_first),
               predict(first, x_first))
  got_first <- bn_training_forward(x_first, axis = 1, weights = w)
  got_last <- bn_training_forward(x_last, weights = w)
  expect_equal(got_first$weights, got_last$weights, tolerance = 1e-12)
})

test_that("gradients run through the batch statistics in training", {
  set.seed(205)
  models <- list(
    keras_model_sequential(input_shape = 4, dtype = "float64") %>%
      layer_dense(3, activation = "tanh") %>%
      layer_batch_normalization(gamma_initializer = "random_normal",
                                beta_initializer = "random_normal") %>%
      layer_dense(2),
    keras_model_sequential(input_shape = c(6, 2), dtype = "float64") %>%
      layer_locally_connected_1d(3, 2) %>%
      layer_batch_normalization(axis = 1, gamma_regularizer = regularizer_l2(0.1)) %>%
      layer_flatten() %>%
      layer_dense(2),
    keras_model_sequential(input_shape = c(6, 2), dtype = "float64") %>%
      layer_locally_connected_1d(3, 2) %>%
      layer_batch_normalization(scale = FALSE, beta_regularizer = regularizer_l1(0.1)) %>%
      layer_flatten() %>%
      layer_dense(2),
    keras_model_sequential(input_shape = c(4, 4, 2), dtype = "float64") %>%
      layer_locally_connected_2d(2, 2, activation = "tanh") %>%
      layer_batch_normalization(axis = 2, center = FALSE, momentum = 0.5) %>%
      layer_flatten() %>%
      layer_dense(2),
    keras_model_sequential(input_shape = c(2, 4, 4), dtype = "float64") %>%
      layer_locally_connected_2d(2, 2, data_format = "channels_first") %>%
      layer_batch_normalization(axis = 1) %>%
      layer_flatten() %>%
      layer_dense(2, activation = "softmax")
  )
  for (model in models) {
    model %>% compile(optimizer = "sgd", loss = "mse")
    input <- unlist(model$layers[[1]]$input_shape)
    expect_gradients_match(model, random_array(c(5, input)), random_array(c(5, 2)),
                           training = TRUE, tolerance = 1e-5)
  }
})

test_that("a frozen layer's gradients are those of inference", {
  set.seed(206)
  model <- keras_model_sequential(input_shape = c(5, 2), dtype = "float64") %>%
    layer_locally_connected_1d(3, 2) %>%
    layer_batch_normalization(trainable = FALSE, weights = bn_weights(3)) %>%
    layer_flatten() %>%
    layer_dense(2)
  model %>% compile(optimizer = "sgd", loss = "mse")
  grads <- expect_gradients_match(model, random_array(c(4, 5, 2)), random_array(c(4, 2)))
  # The moving statistics have a gradient here, but they never train.
  expect_true(all(grads[[5]] != 0))
  expect_equal(lcnn:::training_spec_trainable(model), c(TRUE, TRUE, rep(FALSE, 4), TRUE, TRUE))
})

test_that("fit() updates the moving statistics, a frozen layer keeps them", {
  set.seed(207)
  x <- random_array(c(8, 3, 2), -2, 3)
  y <- random_array(c(8, 2))
  make <- function(trainable) {
    model <- keras_model_sequential(input_shape = c(3, 2), dtype = "float64") %>%
      layer_batch_normalization(axis = 1, momentum = 0.6, trainable = trainable,
                                weights = w) %>%
      layer_flatten() %>%
      layer_dense(2)
    model %>% compile(optimizer = optimizer_sgd(learning_rate = 0.1), loss = "mse")
    model
  }
  w <- bn_weights(3)
  model <- make(TRUE)
  initial <- get_weights(model)
  model %>% fit(x, y, batch_size = 8, epochs = 1, shuffle = FALSE, verbose = 0)
  batch <- ref_batch_moments(x, 1)
  after <- get_weights(model)
  expect_equal(as.vector(after[[3]]), 0.6 * as.vector(w[[3]]) + 0.4 * batch$mean)
  expect_equal(as.vector(after[[4]]), 0.6 * as.vector(w[[4]]) + 0.4 * batch$variance)
  expect_false(isTRUE(all.equal(as_vectors(after[1:2]), as_vectors(w[1:2]))))
  # predict() and evaluate() normalize with the moving statistics.
  hidden <- ref_batch_norm(x, 1, after[[3]], after[[4]], after[[1]], after[[2]])
  expected <- c_rows(hidden) %*% after[[5]] + rep(after[[6]], each = 8)
  expect_close(predict(model, x), expected)
  expect_equal(evaluate(model, x, y)$loss, mean((expected - y)^2))
  # Validation after the epoch too.
  again <- make(TRUE)
  set_weights(again, initial)
  history <- again %>% fit(x, y, batch_size = 8, epochs = 1, shuffle = FALSE, verbose = 0,
                           validation_data = list(x, y))
  expect_equal(history$metrics$val_loss, mean((expected - y)^2))

  frozen <- make(FALSE)
  dense <- get_weights(frozen)[5:6]
  frozen %>% fit(x, y, batch_size = 8, epochs = 1, shuffle = FALSE, verbose = 0)
  expect_equal(as_vectors(get_weights(frozen)[1:4]), as_vectors(w))
  # The dense layer trained on the inference-mode output.
  hidden <- c_rows(ref_batch_norm(x, 1, w[[3]], w[[4]], w[[1]], w[[2]]))
  grad <- 2 * (hidden %*% dense[[1]] + rep(dense[[2]], each = 8) - y) / 16
  expect_equal(get_weights(frozen)[[5]], dense[[1]] - 0.1 * t(hidden) %*% grad)
})

test_that("the optimizer never trains the moving statistics; freezing acts at compile", {
  set.seed(208)
  x <- random_array(c(10, 4))
  y <- random_array(c(10, 1))
  model <- keras_model_sequential(input_shape = 4) %>%
    layer_dense(3) %>%
    layer_batch_normalization(momentum = 1) %>%
    layer_dense(1)
  expect_equal(lcnn:::layer_weight_trainable(model$layers[[2]]), c(TRUE, TRUE, FALSE, FALSE))
  expect_equal(lcnn:::layer_weight_trainable(model$layers[[1]]), c(TRUE, TRUE))
  model %>% compile(optimizer = "adam", loss = "mse")
  model %>% fit(x, y, epochs = 2, batch_size = 5, verbose = 0)
  # momentum = 1 keeps the moving statistics; adam keeps slots for 6 blocks only.
  expect_equal(as_vectors(get_weights(model)[5:6]), list(rep(0, 3), rep(1, 3)))
  expect_equal(model$optimizer_state$trainable, c(TRUE, TRUE, TRUE, TRUE, FALSE, FALSE, TRUE, TRUE))
  expect_length(model$optimizer_state$slots, 6)

  # Saved and read back, the optimizer state is restored and training goes on.
  restored <- readRDS({path <- withr::local_tempfile(); saveRDS(model, path); path})
  set.seed(1)
  restored %>% fit(x, y, epochs = 1, batch_size = 5, verbose = 0)
  set.seed(1)
  model %>% fit(x, y, epochs = 1, batch_size = 5, verbose = 0)
  expect_equal(as_vectors(get_weights(restored)), as_vectors(get_weights(model)))
  expect_equal(restored$optimizer_state$iterations, 6)

  other <- keras_model_sequential(input_shape = 4) %>%
    layer_dense(3) %>%
    layer_batch_normalization(momentum = 0.5) %>%
    layer_dense(1)
  freeze_weights(other, from = 2, to = 2)
  other %>% compile(optimizer = "sgd", loss = "mse")
  before <- get_weights(other)
  other %>% fit(x, y, epochs = 1, batch_size = 5, verbose = 0)
  expect_identical(as_vectors(get_weights(other)[3:6]), as_vectors(before[3:6]))
  expect_false(identical(get_weights(other)[[1]], before[[1]]))
  unfreeze_weights(other)
  other %>% compile(optimizer = "sgd", loss = "mse")
  other %>% fit(x, y, epochs = 1, batch_size = 5, verbose = 0)
  expect_false(identical(get_weights(other)[[5]], before[[5]]))
  expect_false(identical(get_weights(other)[[3]], before[[3]]))
})

test_that("results do not depend on the thread count", {
  set.seed(209)
  x <- random_array(c(64, 6, 6, 3))
  y <- random_array(c(64, 1))
  train <- function(threads) {
    withr::local_options(lcnn.num_threads = threads)
    set.seed(3)
    model <- keras_model_sequential(input_shape = c(6, 6, 3)) %>%
      layer_batch_normalization(axis = 1) %>%
      layer_flatten() %>%
      layer_dense(1)
    model %>% compile(optimizer = "sgd", loss = "mse")
    model %>% fit(x, y, epochs = 1, batch_size = 16, verbose = 0)
    as_vectors(get_weights(model))
  }
  expect_identical(train(1), train(2))
})

test_that("summary() counts the moving statistics as non-trainable", {
  k_clear_session()
  model <- keras_model_sequential(input_shape = c(8, 8, 16)) %>%
    layer_batch_normalization() %>%
    layer_flatten() %>%
    layer_dense(4) %>%
    layer_batch_normalization(center = FALSE, trainable = FALSE)
  out <- capture.output(summary(model))
  expect_true(any(grepl("Trainable params: 4,132 ", out, fixed = TRUE)))
  expect_true(any(grepl("Non-trainable params: 44 ", out, fixed = TRUE)))
  expect_equal(count_params(model), 4176)
  expect_snapshot(summary(model))
})

test_that("outputs and moving statistics match tf-keras", {
  skip_if_not_installed("jsonlite")
  paths <- list.files(test_path("fixtures"), pattern = "^bn_in.*\\.json$", full.names = TRUE)
  expect_gte(length(paths), 13)
  for (path in paths) {
    f <- jsonlite::fromJSON(path, simplifyVector = FALSE)
    cfg <- f$config
    label <- basename(path)
    x <- fixture_array(f$input)
    args <- list(axis = cfg$axis, momentum = cfg$momentum, epsilon = cfg$epsilon,
                 center = cfg$center, scale = cfg$scale, synchronized = cfg$synchronized,
                 weights = lapply(f$weights, fixture_array), dtype = cfg$dtype)
    tolerance <- if (cfg$dtype == "float64") 1e-10 else 1e-5
    model <- do.call(bn_model, c(list(dim(x)[-1]), args))
    expect_equal(count_params(model), f$count_params, label = label)
    # lcnn takes the unbiased moving variance exactly where tf-keras fused.
    expect_equal(lcnn:::layer_engine_spec(model$layers[[1]])$unbiased_moving_variance, f$fused,
                 label = label)
    expect_equal(predict(model, x), fixture_array(f$inference_output), tolerance = tolerance,
                 label = label)
    got <- do.call(bn_training_forward, c(list(x), args))
    expect_equal(got$output, c_rows(fixture_array(f$training_output)), tolerance = tolerance,
                 label = label)
    # Keras rounds 1 - momentum to float32 even in float64 layers; lcnn does
    # not, which moves float64 moving statistics by about 1e-8.
    expect_equal(got$weights, lapply(f$weights_after_training, function(w) unlist(w$values)),
                 tolerance = max(tolerance, 1e-7), label = label)
  }
})

test_that("one epoch of fit() matches tf-keras, frozen or not", {
  skip_if_not_installed("jsonlite")
  paths <- list.files(test_path("fixtures"), pattern = "^bn_fit_.*\\.json$", full.names = TRUE)
  expect_gte(length(paths), 5)
  for (path in paths) {
    f <- jsonlite::fromJSON(path, simplifyVector = FALSE)
    cfg <- f$config
    label <- basename(path)
    x <- fixture_array(f$input)
    model <- keras_model_sequential(input_shape = dim(x)[-1]) %>%
      layer_batch_normalization(axis = cfg$axis, momentum = cfg$momentum,
                                epsilon = cfg$epsilon, trainable = cfg$trainable)
    if (length(dim(x)) > 2) model %>% layer_flatten()
    model %>% layer_dense(f$fit$units)
    set_weights(model, lapply(f$weights, fixture_array))
    model %>% compile(optimizer = optimizer_sgd(learning_rate = f$fit$learning_rate),
                      loss = f$fit$loss)
    model %>% fit(x, fixture_array(f$target), batch_size = f$fit$batch_size, epochs = 1,
                  shuffle = FALSE, verbose = 0)
    expect_equal(as_vectors(get_weights(model)),
                 as_vectors(lapply(f$weights_after_fit, fixture_array)), tolerance = 1e-5,
                 label = label)
    expect_equal(predict(model, x), fixture_array(f$prediction_after_fit), tolerance = 1e-5,
                 label = label)
  }
})

test_that("bad arguments raise classed errors", {
  expect_error(layer_batch_normalization(axis = 0), class = "lcnn_error_argument")
  expect_error(layer_batch_normalization(axis = c(1, 2)), class = "lcnn_error_argument")
  expect_error(layer_batch_normalization(momentum = 2), class = "lcnn_error_argument")
  expect_error(layer_batch_normalization(epsilon = 0), class = "lcnn_error_argument")
  expect_error(keras_model_sequential(input_shape = c(4, 2)) %>%
                 layer_batch_normalization(axis = 3), class = "lcnn_error_shape")
  k_clear_session()
  expect_snapshot(error = TRUE, {
    layer_batch_normalization(axis = 0)
    layer_batch_normalization(axis = c(1, 2))
    layer_batch_normalization(axis = 1.5)
    layer_batch_normalization(momentum = 1.5)
    layer_batch_normalization(momentum = NA)
    layer_batch_normalization(epsilon = 0)
    layer_batch_normalization(center = "yes")
    layer_batch_normalization(scale = NA)
    layer_batch_normalization(synchronized = 1)
    layer_batch_normalization(gamma_initializer = "bogus")
    layer_batch_normalization(beta_regularizer = "l2")
    layer_batch_normalization(gamma_constraint = 3)
    keras_model_sequential(input_shape = c(4, 2)) %>% layer_batch_normalization(axis = 3)
    keras_model_sequential(input_shape = c(4, 2)) %>% layer_batch_normalization(axis = -3)
    keras_model_sequential(input_shape = 3) %>%
      layer_batch_normalization(weights = list(1, 2, 3, 4))
    layer_batch_normalization(array(1, c(2, 3)), weights = list(1:3, 1:3, 1:3))
  })
})
