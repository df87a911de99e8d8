# Central differences in float64 for every layer, activation and loss.

lc_model <- function(rank, ..., input_shape, head = "dense", units = 3, activation = NULL) {
  make <- if (rank == 1) layer_locally_connected_1d else layer_locally_connected_2d
  model <- keras_model_sequential(input_shape = input_shape, dtype = "float64") %>%
    make(..., bias_initializer = initializer_random_normal(stddev = 0.1)) %>%
    layer_flatten()
  model %>% layer_dense(units, activation = activation,
                        bias_initializer = initializer_random_normal(stddev = 0.1))
}

test_that("locally connected gradients are right for every padding, stride and format", {
  set.seed(51)
  configs <- list(
    list(rank = 2, filters = 2, kernel_size = c(3, 2), strides = c(1, 1), padding = "valid",
         data_format = "channels_last", input_shape = c(5, 4, 2)),
    list(rank = 2, filters = 3, kernel_size = c(2, 3), strides = c(2, 1), padding = "same",
         data_format = "channels_first", input_shape = c(2, 5, 4)),
    list(rank = 2, filters = 1, kernel_size = 2, strides = 3, padding = "same",
         data_format = "channels_last", input_shape = c(7, 6, 1)),
    list(rank = 1, filters = 2, kernel_size = 3, strides = 2, padding = "causal",
         data_format = "channels_last", input_shape = c(7, 2)),
    list(rank = 1, filters = 2, kernel_size = 4, strides = 1, padding = "same",
         data_format = "channels_first", input_shape = c(3, 6))
  )
  for (cfg in configs) {
    model <- do.call(lc_model, c(cfg, list(activation = "tanh")))
    model %>% compile(optimizer = "sgd", loss = "mse")
    x <- random_array(c(4, cfg$input_shape))
    y <- random_array(c(4, 3))
    expect_gradients_match(model, x, y)
  }
})

test_that("gradients through the direct kernels and the products are right in every mode", {
  set.seed(54)
  # The layer under test takes the engine's direct kernels (one channel, one
  # filter, kernel 2 or 2x2) or its products (filters x kernel x channels >
  # 64), with patches of 9 to 216 columns and 8 or 64 filters; a locally
  # connected layer before it checks its input gradient. Every padding and
  # data format in 1D and 2D, strides and bias alternating.
  shapes <- list(direct = list(channels = 1, filters = 1, kernel = 2),
                 narrow = list(channels = 3, filters = 8, kernel = 3),
                 wide_patch = list(channels = 24, filters = 8, kernel = 3),
                 wide = list(channels = 3, filters = 64, kernel = 3))
  modes <- expand.grid(padding = c("valid", "same", "causal"), rank = 1:2,
                       data_format = c("channels_last", "channels_first"),
                       stringsAsFactors = FALSE)
  modes <- modes[modes$rank == 1 | modes$padding != "causal", ]
  for (row in seq_len(nrow(modes))) {
    mode <- modes[row, ]
    for (kind in names(shapes)) {
      shape <- shapes[[kind]]
      make <- if (mode$rank == 1) layer_locally_connected_1d else layer_locally_connected_2d
      spatial <- if (mode$rank == 1) 9 else c(7, 6)
      sample <- if (mode$data_format == "channels_last") c(spatial, 2) else c(2, spatial)
      model <- keras_model_sequential(input_shape = sample, dtype = "float64") %>%
        make(shape$channels, 2, data_format = mode$data_format, activation = "tanh",
             bias_initializer = initializer_random_normal(stddev = 0.1)) %>%
        make(shape$filters, shape$kernel, strides = 1 + row %% 2, padding = mode$padding,
             data_format = mode$data_format, use_bias = (row + (kind == "wide_patch")) %% 2 == 0,
             bias_initializer = initializer_random_normal(stddev = 0.1)) %>%
        layer_flatten() %>%
        layer_dense(2)
      expect_identical(lcnn:::.lc_direct_kernels(model$layers[[2]]$state$geometry),
                       kind == "direct")
      model %>% compile(optimizer = "sgd", loss = "mse")
      expect_gradients_match(model, random_array(c(3, sample)), random_array(c(3, 2)),
                             coords = 6)
    }
  }
})

test_that("two stacked locally connected layers pass input gradients back", {
  set.seed(52)
  model <- keras_model_sequential(input_shape = c(8, 2), dtype = "float64") %>%
    layer_locally_connected_1d(3, 3, strides = 1, activation = "elu") %>%
    layer_locally_connected_1d(2, 2, strides = 2, padding = "same", activation = "selu") %>%
    layer_flatten() %>%
    layer_dense(1)
  model %>% compile(optimizer = "sgd", loss = "mae")
  expect_gradients_match(model, random_array(c(5, 8, 2)), random_array(c(5, 1)))
})

test_that("every activation has the right derivative", {
  set.seed(53)
  for (act in setdiff(names(ref_activations), "linear")) {
    model <- keras_model_sequential(input_shape = c(4, 2), dtype = "float64") %>%
      layer_locally_connected_1d(3, 2, activation = act) %>%
      layer_flatten() %>%
      layer_dense(2)
    model %>% compile(optimizer = "sgd", loss = "mse")
    expect_gradients_match(model, random_array(c(3, 4, 2)), random_array(c(3, 2)),
                           coords = 6, tolerance = 1e-5)
  }
  model <- keras_model_sequential(input_shape = c(3, 4), dtype = "float64") %>%
    layer_activation("softmax") %>%
    layer_dense(2, activation = "gelu")
  model %>% compile(optimizer = "sgd", loss = "mse")
  expect_gradients_match(model, random_array(c(3, 3, 4)), random_array(c(3, 3, 2)))
})

test_that("every loss has the right gradient, with and without logits", {
  set.seed(54)
  x <- random_array(c(6, 5))
  labels <- c(0, 2, 1, 1, 0, 2)
  onehot <- diag(3)[labels + 1, ]
  cases <- list(
    list(loss = "mse", activation = NULL, y = random_array(c(6, 3))),
    list(loss = "mae", activation = NULL, y = random_array(c(6, 3))),
    list(loss = loss_huber(delta = 0.3), activation = NULL, y = random_array(c(6, 3))),
    list(loss = "binary_crossentropy", activation = "sigmoid",
         y = matrix(rbinom(18, 1, 0.5), 6)),
    list(loss = loss_binary_crossentropy(from_logits = TRUE), activation = NULL,
         y = matrix(rbinom(18, 1, 0.5), 6)),
    list(loss = "binary_crossentropy", activation = "hard_sigmoid",
         y = matrix(runif(18), 6)),
    list(loss = "categorical_crossentropy", activation = "softmax", y = onehot),
    list(loss = "categorical_crossentropy", activation = "sigmoid", y = onehot),
    list(loss = loss_categorical_crossentropy(from_logits = TRUE), activation = NULL,
         y = onehot),
    list(loss = "sparse_categorical_crossentropy", activation = "softmax", y = labels),
    list(loss = loss_sparse_categorical_crossentropy(from_logits = TRUE), activation = NULL,
         y = labels)
  )
  for (case in cases) {
    model <- keras_model_sequential(input_shape = 5, dtype = "float64") %>%
      layer_dense(3, activation = case$activation,
                  kernel_initializer = initializer_random_normal(stddev = 0.3))
    model %>% compile(optimizer = "sgd", loss = case$loss)
    expect_gradients_match(model, x, case$y, tolerance = 1e-5)
  }
})

test_that("sample weights and regularization penalties enter the gradient", {
  set.seed(55)
  model <- keras_model_sequential(input_shape = c(5, 1), dtype = "float64") %>%
    layer_locally_connected_1d(2, 2, kernel_regularizer = regularizer_l1_l2(0.01, 0.02),
                               bias_regularizer = regularizer_l2(0.1),
                               bias_initializer = initializer_random_normal()) %>%
    layer_flatten() %>%
    layer_dense(1, kernel_regularizer = regularizer_l1(0.05))
  model %>% compile(optimizer = "sgd", loss = "mse")
  expect_gradients_match(model, random_array(c(6, 5, 1)), random_array(c(6, 1)),
                         sample_weight = c(1, 2, 0, 0.5, 1, 3))
})

test_that("activity regularizers enter the loss and its gradient", {
  set.seed(56)
  model <- keras_model_sequential(input_shape = c(6, 2), dtype = "float64") %>%
    layer_locally_connected_1d(3, 2, activation = "tanh",
                               activity_regularizer = regularizer_l1_l2(0.03, 0.05)) %>%
    layer_flatten() %>%
    layer_dense(2, activation = "softmax", activity_regularizer = regularizer_l2(0.1))
  model %>% compile(optimizer = "sgd", loss = "categorical_crossentropy")
  x <- random_array(c(4, 6, 2))
  y <- diag(2)[c(1, 2, 2, 1), ]
  expect_gradients_match(model, x, y)
  plain <- keras_model_sequential(input_shape = c(6, 2), dtype = "float64") %>%
    layer_locally_connected_1d(3, 2, activation = "tanh") %>%
    layer_flatten() %>%
    layer_dense(2, activation = "softmax")
  plain %>% compile(optimizer = "sgd", loss = "categorical_crossentropy")
  set_weights(plain, get_weights(model))
  hidden <- predict(keras_model_sequential(input_shape = c(6, 2), dtype = "float64") %>%
                      layer_locally_connected_1d(3, 2, activation = "tanh",
                                                 weights = get_weights(model)[1:2]), x)
  out <- predict(plain, x)
  penalty <- (0.03 * sum(abs(hidden)) + 0.05 * sum(hidden^2)) / 4 + 0.1 * sum(out^2) / 4
  expect_equal(evaluate(model, x, y)$loss, evaluate(plain, x, y)$loss + penalty,
               tolerance = 1e-8)
})
