test_that("dense applies x %*% kernel + bias on the last axis", {
  set.seed(61)
  model <- keras_model_sequential(input_shape = c(3, 4), dtype = "float64") %>%
    layer_dense(2, activation = "tanh", bias_initializer = initializer_random_normal())
  w <- get_weights(model)
  expect_equal(lapply(w, dim), list(c(4L, 2L), 2L))
  x <- random_array(c(5, 3, 4))
  expected <- array(0, c(5, 3, 2))
  for (t in 1:3) expected[, t, ] <- tanh(x[, t, ] %*% w[[1]] + rep(w[[2]], each = 5))
  expect_close(predict(model, x), expected)
  expect_equal(count_params(model), 10)
})

test_that("flatten follows Keras's C order, channels moved last for channels_first", {
  x <- array(seq_len(2 * 2 * 3 * 4), c(2, 2, 3, 4))
  flat <- layer_flatten(x)
  expect_equal(dim(flat), c(2L, 24L))
  # x[b, i, j, c] lands at (i - 1) * 12 + (j - 1) * 4 + c.
  expect_equal(flat[2, (2 - 1) * 12 + (3 - 1) * 4 + 4], x[2, 2, 3, 4])
  expect_equal(flat[1, 1:4], x[1, 1, 1, ])
  first <- layer_flatten(x, data_format = "channels_first")
  # channels_first (b, c, i, j) -> order (i, j, c): x[b, c, i, j] at (i-1)*4*2 + (j-1)*2 + c.
  expect_equal(first[2, (3 - 1) * 4 * 2 + (4 - 1) * 2 + 2], x[2, 2, 3, 4])
})

test_that("activation layers apply their function; dropout is the identity at predict", {
  x <- array(c(-2, -0.5, 0, 1.5), c(1, 4))
  expect_equal(as.vector(layer_activation(x, "relu")), c(0, 0, 0, 1.5))
  expect_equal(as.vector(layer_activation(x, "softmax")), exp(x[1, ]) / sum(exp(x[1, ])),
               tolerance = 1e-6)
  expect_equal(layer_dropout(x, rate = 0.5), x)
})

test_that("dropout drops a fraction `rate` in training, scaling the rest", {
  model <- keras_model_sequential(input_shape = 2000, dtype = "float64") %>%
    layer_dropout(rate = 0.3) %>%
    layer_dense(1, use_bias = FALSE, kernel_initializer = "ones")
  model %>% compile(optimizer = "sgd", loss = "mse")
  t <- trainer_for(model, matrix(1, 1, 2000), matrix(0, 1, 1))
  grad <- function(seed) {
    lcnn:::.trainer_gradients(t$trainer, t$data$x, t$data$y, NULL, 1, seed, 1L)[[1]]
  }
  g <- grad(c(1, 2))
  expect_equal(mean(g == 0), 0.3, tolerance = 0.1)
  expect_equal(length(unique(g[g != 0])), 1)
  expect_identical(grad(c(1, 2)), g)
  expect_false(identical(grad(c(3, 4)), g))
})

test_that("noise_shape shares one mask value along axes of size 1", {
  model <- keras_model_sequential(input_shape = c(50, 4), dtype = "float64") %>%
    layer_dropout(rate = 0.5, noise_shape = list(NULL, 1, 4)) %>%
    layer_flatten() %>%
    layer_dense(1, use_bias = FALSE, kernel_initializer = "ones")
  model %>% compile(optimizer = "sgd", loss = "mse")
  t <- trainer_for(model, array(1, c(1, 50, 4)), matrix(0, 1, 1))
  g <- matrix(lcnn:::.trainer_gradients(t$trainer, t$data$x, t$data$y, NULL, 1, c(5, 6), 1L)[[1]],
              nrow = 50, byrow = TRUE)
  # Flattened in C order: each column is one channel, dropped or kept whole.
  expect_true(all(apply(g, 2, function(col) length(unique(col)) == 1)))
  expect_error(keras_model_sequential(input_shape = c(5, 4)) %>%
                 layer_dropout(0.5, noise_shape = c(NA, 2, 4)), class = "lcnn_error_shape")
})

test_that("bad core layer arguments raise classed errors", {
  expect_error(layer_dense(units = 0), class = "lcnn_error_argument")
  expect_error(layer_dense(), class = "lcnn_error_argument")
  expect_error(layer_dense(units = 2, activation = "bogus"), class = "lcnn_error_argument")
  expect_error(layer_dropout(rate = 1), class = "lcnn_error_argument")
  expect_error(layer_dropout(rate = 0.5, noise_shape = c(NA, 0)), class = "lcnn_error_argument")
  expect_error(layer_activation(activation = 3), class = "lcnn_error_argument")
  expect_error(layer_flatten(data_format = "nchw"), class = "lcnn_error_argument")
  expect_snapshot(error = TRUE, {
    layer_dense(units = 0)
    layer_dropout(rate = 1.5)
  })
})

test_that("noise_shape takes only NULL, NA or whole numbers, one per axis", {
  # Not coerced to NA or 1, nor an unclassed error.
  expect_no_warning(expect_error(layer_dropout(rate = 0.5, noise_shape = c("a", "b")),
                                 class = "lcnn_error_argument"))
  expect_error(layer_dropout(rate = 0.5, noise_shape = list(NULL, "x")),
               "noise_shape[[2]]", fixed = TRUE, class = "lcnn_error_argument")
  expect_error(layer_dropout(rate = 0.5, noise_shape = list(NULL, c(1, 2))),
               class = "lcnn_error_argument")
  expect_error(layer_dropout(rate = 0.5, noise_shape = 4), class = "lcnn_error_argument")
  expect_snapshot(error = TRUE, layer_dropout(rate = 0.5, noise_shape = list(NULL, TRUE)))
  expect_equal(layer_dropout(rate = 0.5, noise_shape = list(NULL, NA, 2L))$config$noise_shape,
               c(NA, NA, 2))
})
