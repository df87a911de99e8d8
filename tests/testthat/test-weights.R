test_that("get_weights() and set_weights() round-trip on models and layers", {
  set.seed(31)
  model <- keras_model_sequential(input_shape = c(6, 6, 2), dtype = "float64") %>%
    layer_locally_connected_2d(3, 2, implementation = 3) %>%
    layer_locally_connected_2d(2, 3, implementation = 2, use_bias = FALSE)
  w <- get_weights(model)
  expect_length(w, 3)
  new <- lapply(w, function(a) a + 1)
  # Implementation 2: only connected entries survive; compare those.
  connected <- w[[3]] != 0
  returned <- withVisible(set_weights(model, new))
  expect_false(returned$visible)
  back <- get_weights(model)
  expect_equal(back[1:2], new[1:2])
  expect_equal(back[[3]][connected], new[[3]][connected])
  expect_equal(get_weights(model$layers[[1]]), back[1:2])
  set_weights(model$layers[[2]], w[3])
  expect_equal(get_weights(model)[[3]], w[[3]])
})

test_that("implementation 3 weights are accepted as plain vectors", {
  model <- keras_model_sequential(input_shape = c(5, 1)) %>%
    layer_locally_connected_1d(1, 2, implementation = 3)
  n <- length(get_weights(model)[[1]])
  set_weights(model, list(seq_len(n) / 10, matrix(0, 4, 1)))
  expect_equal(as.vector(get_weights(model)[[1]]), seq_len(n) / 10, tolerance = 1e-7)
})

test_that("count_params() counts the Keras arrays, masked entries included", {
  layer <- function(i) keras_model_sequential(input_shape = c(6, 5, 2)) %>%
    layer_locally_connected_2d(3, c(3, 2), strides = c(2, 1), implementation = i)
  expect_equal(count_params(layer(1)), 8 * 12 * 3 + 8 * 3)
  expect_equal(count_params(layer(2)), 6 * 5 * 2 * 2 * 4 * 3 + 8 * 3)
  expect_equal(count_params(layer(3)), 8 * 12 * 3 + 8 * 3)
  expect_equal(count_params(layer(1)$layers[[1]]), 8 * 12 * 3 + 8 * 3)
})

test_that("wrong weights raise classed errors and change nothing", {
  k_clear_session()
  model <- keras_model_sequential(input_shape = c(6, 6, 2)) %>%
    layer_locally_connected_2d(3, 2) %>%
    layer_locally_connected_2d(2, 3)
  before <- get_weights(model)
  bad_count <- before[1:3]
  bad_shape <- before
  bad_shape[[4]] <- array(0, c(2, 3, 3))
  bad_type <- before
  bad_type[[1]] <- array("a", dim(before[[1]]))
  expect_error(set_weights(model, bad_count), class = "lcnn_error_shape")
  expect_error(set_weights(model, bad_shape), class = "lcnn_error_shape")
  expect_error(set_weights(model, bad_type), class = "lcnn_error_shape")
  expect_error(set_weights(model, "weights"), class = "lcnn_error_shape")
  expect_error(set_weights(model$layers[[1]], before[3:4]), class = "lcnn_error_shape")
  expect_identical(get_weights(model), before)
  expect_error(get_weights(layer_locally_connected_2d(filters = 1, kernel_size = 1)),
               class = "lcnn_error_state")
  expect_snapshot(error = TRUE, {
    set_weights(model, bad_count)
    set_weights(model, bad_shape)
    get_weights(layer_locally_connected_2d(filters = 1, kernel_size = 1, name = "unbuilt"))
  })
})

test_that("weights = with the wrong shape fails when the layer is built", {
  expect_error(keras_model_sequential(input_shape = c(6, 1)) %>%
                 layer_locally_connected_1d(2, 3, weights = list(array(0, c(1, 2, 3)))),
               class = "lcnn_error_shape")
})

test_that("weights with non-finite values, or beyond float32, are refused", {
  model <- keras_model_sequential(input_shape = 3)
  expect_snapshot(error = TRUE,
                  model %>% layer_dense(units = 2, name = "d",
                                        weights = list(matrix(NA, 3, 2), c(0, 0))))
  expect_error(model %>% layer_dense(units = 2, weights = list(matrix(1, 3, 2), c(0, -Inf))),
               "weights[[2]]", fixed = TRUE, class = "lcnn_error_argument")
  expect_length(model$layers, 0)
  model %>% layer_dense(units = 2, name = "d") %>% layer_dense(units = 1, name = "e")
  before <- get_weights(model)
  bad <- before
  bad[[3]][2] <- NaN
  expect_error(set_weights(model, bad), "weights[[3]]", fixed = TRUE,
               class = "lcnn_error_argument")
  bad <- before
  bad[[1]][1] <- 1e300
  expect_snapshot(error = TRUE, set_weights(model, bad))
  expect_error(set_weights(model$layers[[1]], list(matrix(-4e38, 3, 2), c(0, 0))),
               class = "lcnn_error_argument")
  expect_identical(get_weights(model), before)
  # float32's largest value is fine, and float64 holds more.
  big <- before
  big[[1]][1] <- -3.4028234e38
  set_weights(model, big)
  expect_equal(get_weights(model)[[1]][1], -3.4028234e38, tolerance = 1e-7)
  wide <- keras_model_sequential(input_shape = 3, dtype = "float64") %>% layer_dense(units = 2)
  set_weights(wide, list(matrix(1e300, 3, 2), c(0, 0)))
  expect_equal(get_weights(wide)[[1]][1], 1e300)
})

test_that("get_weights(), set_weights() and count_params() of something else are classed errors", {
  expect_error(get_weights(list()), class = "lcnn_error_argument")
  expect_error(set_weights(list(), list()), class = "lcnn_error_argument")
  expect_error(count_params(1), class = "lcnn_error_argument")
  expect_snapshot(error = TRUE, {
    get_weights(list())
    set_weights(NULL, list())
  })
})
