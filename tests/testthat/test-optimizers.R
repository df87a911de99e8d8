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

# Keras's rules applied by hand, step after step, to a weight vector whose
# loss mean(w^2) has the gradient 2 w / length(w): every slot a rule keeps,
# with the values of many weights updated together as the engine does.
updated_by_hand <- function(rule, w, steps) {
  zero <- 0 * w
  m <- zero; v <- zero; v_hat <- zero; velocity <- zero; mean_grad <- zero
  accumulator <- zero + 0.1
  for (t in seq_len(steps)) {
    g <- 2 * w / length(w)
    switch(rule$name,
      sgd = {
        m <- rule$momentum * m - rule$learning_rate * g
        w <- w + rule$momentum * m - rule$learning_rate * g
      },
      adam = {
        alpha <- rule$learning_rate * sqrt(1 - rule$beta_2^t) / (1 - rule$beta_1^t)
        m <- m + (g - m) * (1 - rule$beta_1)
        v <- v + (g^2 - v) * (1 - rule$beta_2)
        v_hat <- pmax(v_hat, v)
        w <- w - m * alpha / (sqrt(v_hat) + 1e-7)
      },
      rmsprop = {
        velocity <- rule$rho * velocity + (1 - rule$rho) * g^2
        mean_grad <- rule$rho * mean_grad + (1 - rule$rho) * g
        m <- rule$momentum * m +
          rule$learning_rate * g / sqrt(velocity - mean_grad^2 + 1e-7)
        w <- w - m
      },
      adagrad = {
        accumulator <- accumulator + g^2
        w <- w - rule$learning_rate * g / sqrt(accumulator + 1e-7)
      })
  }
  w
}

test_that("every slot of every rule follows Keras over several steps and many weights", {
  w0 <- seq(-1.5, 2, length.out = 37)
  rules <- list(optimizer_sgd(0.5, momentum = 0.9, nesterov = TRUE),
                optimizer_adam(0.5, beta_2 = 0.1, amsgrad = TRUE),
                optimizer_rmsprop(0.1, centered = TRUE, momentum = 0.5),
                optimizer_adagrad(0.5))
  for (rule in rules) {
    model <- keras_model_sequential(input_shape = 1, dtype = "float64") %>%
      layer_dense(37, use_bias = FALSE)
    model %>% compile(optimizer = rule, loss = "mse")
    set_weights(model, list(matrix(w0, 1, 37)))
    model %>% fit(matrix(1, 1, 1), matrix(0, 1, 37), epochs = 4, batch_size = 1,
                  shuffle = FALSE, verbose = 0)
    expect_equal(as.vector(get_weights(model)[[1]]), updated_by_hand(rule, w0, 4),
                 tolerance = 1e-12, label = rule$name)
  }
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

test_that("every optimizer argument is checked against its range, as Keras 2", {
  expect_error(optimizer_sgd(momentum = 5), class = "lcnn_error_argument")
  expect_error(optimizer_sgd(momentum = 1.01), class = "lcnn_error_argument")
  expect_equal(optimizer_sgd(momentum = 1)$momentum, 1)
  expect_error(optimizer_rmsprop(momentum = 2), class = "lcnn_error_argument")
  expect_error(optimizer_rmsprop(rho = 1), class = "lcnn_error_argument")
  expect_error(optimizer_adam(beta_2 = -0.1), class = "lcnn_error_argument")
  expect_error(optimizer_adam(epsilon = 0), class = "lcnn_error_argument")
  expect_error(optimizer_adagrad(initial_accumulator_value = -0.5),
               class = "lcnn_error_argument")
  expect_equal(optimizer_adagrad(initial_accumulator_value = 0)$initial_accumulator_value, 0)
  expect_error(optimizer_sgd(nesterov = NA), class = "lcnn_error_argument")
  expect_snapshot(error = TRUE, {
    optimizer_sgd(momentum = 5)
    optimizer_adam(beta_1 = 1)
    optimizer_adagrad(initial_accumulator_value = -0.5)
  })
})

test_that("compile() checks the fields of an optimizer changed after it was made", {
  model <- keras_model_sequential(input_shape = 1) %>% layer_dense(1)
  model %>% compile(optimizer = "sgd", loss = "mse")
  before <- model$compiled
  bad <- list(learning_rate = -1, momentum = 5, beta_1 = 1, epsilon = 0, amsgrad = "yes",
              name = "lbfgs")
  for (field in names(bad)) {
    o <- optimizer_adam()
    o[[field]] <- bad[[field]]
    expect_error(compile(model, o, "mse"), class = "lcnn_error_argument")
  }
  expect_identical(model$compiled, before)
  o <- optimizer_adam()
  o$learning_rate <- 0.5
  model %>% compile(o, "mse")
  expect_equal(model$compiled$optimizer$learning_rate, 0.5)
  o$learning_rate <- -1
  o$momentum <- 5
  expect_snapshot(error = TRUE, compile(model, o, "mse"))
})

test_that("arguments the optimizers do not take are refused, not ignored", {
  expect_snapshot(error = TRUE, {
    optimizer_adam(clipnorm = 1)
    optimizer_sgd(lerning_rate = 0.1)
  })
  expect_error(optimizer_rmsprop(weight_decay = 0.01), class = "lcnn_error_argument")
  expect_error(optimizer_adagrad(0.1, 0.1, 1e-7, NULL, 3), class = "lcnn_error_argument")
})
