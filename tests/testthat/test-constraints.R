# Constraints act after each update, with norms over the Keras-layout axes.

constrained_fit <- function(constraint, implementation = 1, bias_constraint = NULL) {
  set.seed(91)
  model <- keras_model_sequential(input_shape = c(6, 2), dtype = "float64") %>%
    layer_locally_connected_1d(3, 2, implementation = implementation,
                               kernel_initializer = initializer_random_normal(stddev = 3),
                               kernel_constraint = constraint,
                               bias_constraint = bias_constraint)
  model %>% compile(optimizer = optimizer_sgd(0.5), loss = "mse")
  model %>% fit(random_array(c(8, 6, 2)), random_array(c(8, 5, 3)) * 10, epochs = 2,
                verbose = 0)
  get_weights(model)
}

test_that("maxnorm caps the norm over the given Keras axes", {
  w <- constrained_fit(constraint_maxnorm(1, axis = 0))[[1]]
  norms <- sqrt(apply(w^2, c(2, 3), sum))
  expect_true(all(norms <= 1 + 1e-6))
  expect_true(any(norms > 0.99))
  w2 <- constrained_fit(constraint_maxnorm(0.5, axis = c(1, 2)))[[1]]
  expect_true(all(sqrt(apply(w2^2, 1, sum)) <= 0.5 + 1e-6))
})

test_that("unitnorm, minmaxnorm and nonneg follow Keras", {
  w <- constrained_fit(constraint_unitnorm(axis = 1))[[1]]
  expect_equal(sqrt(apply(w^2, c(1, 3), sum)), matrix(1, 5, 3), tolerance = 1e-6)
  mm <- constrained_fit(constraint_minmaxnorm(min_value = 2, max_value = 3, axis = -1))[[1]]
  norms <- sqrt(apply(mm^2, c(1, 2), sum))
  expect_true(all(norms >= 2 - 1e-6 & norms <= 3 + 1e-6))
  nn <- constrained_fit(constraint_nonneg(), bias_constraint = constraint_nonneg())
  expect_true(all(nn[[1]] >= 0) && all(nn[[2]] >= 0))
})

test_that("axes refer to the implementation's own layout", {
  # Implementation 3 is one axis: maxnorm over axis 0 caps the whole kernel.
  w <- constrained_fit(constraint_maxnorm(2, axis = 0), implementation = 3)[[1]]
  expect_lte(sqrt(sum(w^2)), 2 + 1e-6)
  expect_error(constrained_fit(constraint_maxnorm(2, axis = 1), implementation = 3),
               class = "lcnn_error_argument")
  # Checked when the layer is built: a model without input shape stays unbuilt.
  model <- keras_model_sequential() %>%
    layer_dense(1, kernel_constraint = constraint_maxnorm(2, axis = 3))
  model %>% compile(optimizer = "sgd", loss = "mse")
  expect_error(fit(model, matrix(1, 4, 3), rep(0, 4), verbose = 0),
               class = "lcnn_error_argument")
  expect_false(model$built)
})

test_that("constraint_minmaxnorm() takes a rate in [0, 1] and ordered bounds", {
  expect_snapshot(error = TRUE, constraint_minmaxnorm(0.5, 1, rate = -1))
  expect_error(constraint_minmaxnorm(rate = 1.5), class = "lcnn_error_argument")
  expect_error(constraint_minmaxnorm(min_value = -1), class = "lcnn_error_argument")
  expect_error(constraint_maxnorm(0), class = "lcnn_error_argument")
  expect_equal(constraint_minmaxnorm(0.5, 1, rate = 0)$args$rate, 0)
})
