test_that("lcnn_cpu_kernels() reports the widest available set and switches sets", {
  info <- lcnn_cpu_kernels()
  expect_named(info, c("in_use", "available"))
  expect_equal(info$available[1], "baseline")
  expect_equal(info$in_use, info$available[length(info$available)])
  withr::defer(lcnn_cpu_kernels(info$in_use))
  expect_invisible(lcnn_cpu_kernels("baseline"))
  expect_equal(lcnn_cpu_kernels()$in_use, "baseline")
})

test_that("every kernel set computes the same layers to float rounding", {
  initial <- lcnn_cpu_kernels()
  withr::defer(lcnn_cpu_kernels(initial$in_use))
  set.seed(4)
  model <- keras_model_sequential(input_shape = c(9, 8, 3)) %>%
    layer_conv_2d(filters = 4, kernel_size = 2, activation = "relu") %>%
    layer_locally_connected_2d(filters = 5, kernel_size = c(3, 2), strides = c(2, 1)) %>%
    layer_flatten() %>%
    layer_dense(units = 3, activation = "softmax")
  compile(model, optimizer = optimizer_sgd(learning_rate = 0.1),
          loss = "categorical_crossentropy")
  x <- array(runif(40 * 9 * 8 * 3), c(40, 9, 8, 3))
  y <- diag(3)[sample(3, 40, replace = TRUE), ]
  start <- get_weights(model)
  run <- function(kernels) {
    lcnn_cpu_kernels(kernels)
    set_weights(model, start)
    prediction <- predict(model, x, batch_size = 40)
    fit(model, x, y, epochs = 2, batch_size = 20, shuffle = FALSE, verbose = 0)
    list(prediction = prediction, weights = get_weights(model))
  }
  results <- lapply(initial$available, run)
  for (result in results[-1]) {
    expect_equal(result$prediction, results[[1]]$prediction, tolerance = 1e-5)
    expect_equal(result$weights, results[[1]]$weights, tolerance = 1e-5)
  }
  expect_gt(max(abs(results[[1]]$weights[[1]] - start[[1]])), 1e-3)
})

test_that("unknown or unavailable kernel sets are refused", {
  before <- lcnn_cpu_kernels()$in_use
  expect_error(lcnn_cpu_kernels("sse9"), class = "lcnn_error_argument")
  expect_error(lcnn_cpu_kernels(c("baseline", "avx2")), class = "lcnn_error_argument")
  expect_equal(lcnn_cpu_kernels()$in_use, before)
  expect_snapshot(error = TRUE, check_cpu_kernels("avx512", c("baseline", "avx2")))
})

test_that("LCNN_CPU_KERNELS chooses the set at load, with a warning for a bad name", {
  initial <- lcnn_cpu_kernels()$in_use
  withr::defer(lcnn_cpu_kernels(initial))
  withr::local_envvar(LCNN_CPU_KERNELS = "baseline")
  use_cpu_kernels_from_environment()
  expect_equal(lcnn_cpu_kernels()$in_use, "baseline")
  lcnn_cpu_kernels(initial)
  withr::local_envvar(LCNN_CPU_KERNELS = "neon")
  expect_snapshot(use_cpu_kernels_from_environment(c("baseline", "avx2")))
  expect_warning(use_cpu_kernels_from_environment(), class = "lcnn_warning_argument")
  expect_equal(lcnn_cpu_kernels()$in_use, initial)
})
