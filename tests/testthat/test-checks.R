# Sizes, seeds and axes beyond R's integers: as.integer() would make them NA
# with only a warning, and that NA then stood for the value.

test_that("whole numbers beyond R's integers are refused where they are given", {
  expect_snapshot(error = TRUE, {
    layer_locally_connected_2d(filters = 2^31, kernel_size = 3)
    layer_locally_connected_2d(filters = 2, kernel_size = c(3, 2^31))
    initializer_random_normal(seed = 2^31)
    layer_input(shape = c(2^31, 3))
    layer_reshape(target_shape = c(-1, 2^31))
    layer_batch_normalization(axis = -2^31)
    constraint_maxnorm(axis = 1e10)
  })
  model <- keras_model_sequential(input_shape = 3) %>% layer_dense(2)
  model %>% compile(optimizer = "sgd", loss = "mse")
  x <- matrix(1, 4, 3)
  y <- matrix(1, 4, 2)
  expect_snapshot(error = TRUE, fit(model, x, y, epochs = 1e10, verbose = 0))
  expect_snapshot(error = TRUE, predict(model, x, batch_size = 2^31))
  a <- layer_input(shape = 3)
  expect_error(layer_concatenate(list(a, a), axis = 2^31), class = "lcnn_error_argument")
  # Whole numbers at the edge are still taken.
  expect_identical(initializer_random_normal(seed = 2^31 - 1)$seed, .Machine$integer.max)
})

test_that("shapes that add or multiply past R's integers are shape errors", {
  expect_snapshot(error = TRUE, {
    keras_model_sequential(input_shape = c(2^16, 2^16)) %>% layer_flatten()
    keras_model_sequential(input_shape = c(4, 5, 2)) %>% layer_zero_padding_2d(padding = 2^30)
  })
  a <- layer_input(shape = c(2^31 - 1, 1))
  b <- layer_input(shape = c(1, 1))
  expect_error(layer_concatenate(list(a, b), axis = 1), class = "lcnn_error_shape")
  expect_identical(layer_concatenate(list(b, b), axis = 1)$shape, c(2L, 1L))
})

test_that("a shape given as a list keeps its argument's name in the error", {
  expect_snapshot(error = TRUE, {
    layer_locally_connected_2d(filters = 2, kernel_size = 3, input_shape = list(5, NULL, 3))
  })
})
