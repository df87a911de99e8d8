# One or two updates of w on the loss (w * 1 - 0)^2, whose gradient is 2 w,
# against the update rules written out by hand.

one_weight_model <- function(optimizer, steps = 1) {
  model <- keras_model_sequential(input_shape = 1, dtype = "float64") %>%
    layer_dense(1, use_bias = FALSE, kernel_initializer = "ones")
  model %>% compile(optimizer = optimizer, loss = "mse")
  model %>% fit(matrix(1, 1, 1), matrix(0, 1, 1), epochs = steps, batch_size = 1,
                shuffle = FALSE, verbose = 0)
  as.vector(get_weights(model)[[1]])
}

test_that("updates follow Keras's rules", {
  expect_equal(one_weight_model(optimizer_sgd(learning_rate = 0.1)), 0.8)
  expect_equal(one_weight_model(optimizer_sgd(0.1, momentum = 0.9), steps = 2),
               0.8 + (0.9 * -0.2 - 0.1 * 1.6))
  expect_equal(one_weight_model(optimizer_sgd(0.1, momentum = 0.9, nesterov = TRUE)),
               1 + 0.9 * -0.2 - 0.2)
  alpha <- 0.001 * sqrt(1 - 0.999) / (1 - 0.9)
  expect_equal(one_weight_model("adam"), 1 - 0.2 * alpha / (sqrt(0.004) + 1e-7))
  expect_equal(one_weight_model(optimizer_adam(amsgrad = TRUE)),
               1 - 0.2 * alpha / (sqrt(0.004) + 1e-7))
  expect_equal(one_weight_model("rmsprop"), 1 - 0.001 * 2 / sqrt(0.4 + 1e-7))
  expect_equal(one_weight_model(optimizer_rmsprop(centered = TRUE)),
               1 - 0.001 * 2 / sqrt(0.4 - 0.2^2 + 1e-7))
  expect_equal(one_weight_model(optimizer_rmsprop(momentum = 0.5), steps = 1),
               1 - 0.001 * 2 / sqrt(0.4 + 1e-7))
  expect_equal(one_weight_model("adagrad"), 1 - 0.001 * 2 / sqrt(4.1 + 1e-7))
})

test_that("optimizers keep Keras's defaults and accept names", {
  expect_equal(optimizer_sgd()$learning_rate, 0.01)
  expect_equal(optimizer_adam()[c("learning_rate", "beta_1", "beta_2", "epsilon", "amsgrad")],
               list(learning_rate = 0.001, beta_1 = 0.9, beta_2 = 0.999, epsilon = 1e-7,
                    amsgrad = FALSE))
  expect_equal(optimizer_rmsprop()[c("learning_rate", "rho", "momentum", "centered")],
               list(learning_rate = 0.001, rho = 0.9, momentum = 0, centered = FALSE))
  expect_equal(optimizer_adagrad()$initial_accumulator_value, 0.1)
  expect_equal(lcnn:::check_optimizer("Adam")$name, "adam")
  expect_warning(opt <- optimizer_sgd(lr = 0.5), class = "lcnn_warning_deprecated")
  expect_equal(opt$learning_rate, 0.5)
  expect_snapshot(print(optimizer_adam(learning_rate = 0.01, amsgrad = TRUE)))
})

test_that("bad optimizer arguments raise classed errors", {
  expect_error(optimizer_sgd(learning_rate = 0), class = "lcnn_error_argument")
  expect_error(optimizer_sgd(momentum = -1), class = "lcnn_error_argument")
  expect_error(optimizer_adam(beta_1 = 1), class = "lcnn_error_argument")
  expect_error(optimizer_rmsprop(centered = "yes"), class = "lcnn_error_argument")
  expect_error(lcnn:::check_optimizer("lbfgs"), class = "lcnn_error_argument")
})
