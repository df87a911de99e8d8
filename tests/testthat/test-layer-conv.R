# Convolutions: outputs against ref_conv() (helper-reference.R) and real
# tf-keras, gradients, weights, errors and training.

conv_layer <- function(rank) if (rank == 1) layer_conv_1d else layer_conv_2d

# A float64 model of one convolution on samples of `shape`, with random
# weights in [-1, 1]; returns the model and its weights.
conv_model <- function(rank, shape, ...) {
  model <- keras_model_sequential(input_shape = shape) %>%
    conv_layer(rank)(..., dtype = "float64")
  w <- lapply(get_weights(model), function(a) {
    array(runif(length(a), -1, 1), if (is.null(dim(a))) length(a) else dim(a))
  })
  set_weights(model, w)
  list(model = model, weights = w)
}

sample_shape <- function(spatial, channels, data_format) {
  if (data_format == "channels_last") c(spatial, channels) else c(channels, spatial)
}

cases_2d <- list(
  list(spatial = c(6, 5), channels = 2, filters = 3, kernel = c(3, 2), strides = c(1, 1),
       dilation = c(1, 1), groups = 1),
  list(spatial = c(7, 6), channels = 4, filters = 6, kernel = c(3, 3), strides = c(2, 2),
       dilation = c(1, 1), groups = 2),
  list(spatial = c(8, 7), channels = 3, filters = 2, kernel = c(2, 3), strides = c(1, 1),
       dilation = c(3, 2), groups = 1),
  list(spatial = c(5, 7), channels = 4, filters = 4, kernel = c(4, 2), strides = c(3, 1),
       dilation = c(1, 1), groups = 4),
  list(spatial = c(7, 7), channels = 6, filters = 9, kernel = c(2, 2), strides = c(1, 1),
       dilation = c(2, 2), groups = 3),
  list(spatial = c(3, 4), channels = 1, filters = 2, kernel = c(3, 4), strides = c(2, 3),
       dilation = c(1, 1), groups = 1)
)

test_that("2D outputs match the reference for every padding, data format and case", {
  set.seed(201)
  grid <- expand.grid(case = seq_along(cases_2d), padding = c("valid", "same"),
                      data_format = c("channels_last", "channels_first"),
                      use_bias = c(TRUE, FALSE), stringsAsFactors = FALSE)
  for (row in seq_len(nrow(grid))) {
    cfg <- grid[row, ]
    case <- cases_2d[[cfg$case]]
    shape <- sample_shape(case$spatial, case$channels, cfg$data_format)
    built <- conv_model(2, shape, filters = case$filters, kernel_size = case$kernel,
                        strides = case$strides, padding = cfg$padding,
                        data_format = cfg$data_format, dilation_rate = case$dilation,
                        groups = case$groups, use_bias = cfg$use_bias)
    w <- built$weights
    x <- random_array(c(3, shape))
    expected <- ref_conv(x, w[[1]], if (cfg$use_bias) w[[2]], case$kernel, case$strides,
                         cfg$padding, cfg$data_format, case$dilation, case$groups)
    expect_close(predict(built$model, x), expected)
  }
})

test_that("1D outputs match the reference, including causal padding", {
  set.seed(202)
  grid <- expand.grid(kernel = 1:4, strides = 1:3, dilation = 1:3,
                      padding = c("valid", "same", "causal"),
                      data_format = c("channels_last", "channels_first"),
                      stringsAsFactors = FALSE)
  grid <- grid[grid$strides == 1 | grid$dilation == 1, ]
  for (row in seq_len(nrow(grid))) {
    cfg <- grid[row, ]
    groups <- c(1, 2, 3)[row %% 3 + 1]
    channels <- groups * (1 + row %% 2)
    filters <- groups * (1 + (row %/% 2) %% 2)
    shape <- sample_shape(11, channels, cfg$data_format)
    built <- conv_model(1, shape, filters = filters, kernel_size = cfg$kernel,
                        strides = cfg$strides, padding = cfg$padding,
                        data_format = cfg$data_format, dilation_rate = cfg$dilation,
                        groups = groups, use_bias = row %% 4 != 0)
    w <- built$weights
    x <- random_array(c(2, shape))
    expected <- ref_conv(x, w[[1]], if (row %% 4 != 0) w[[2]], cfg$kernel, cfg$strides,
                         cfg$padding, cfg$data_format, cfg$dilation, groups)
    expect_close(predict(built$model, x), expected)
  }
})

test_that("same padding follows TensorFlow, not the locally connected centring", {
  # n = 6, k = 4, s = 2: out 3, total pad (3 - 1) * 2 + 4 - 6 = 2, one before;
  # output 0 reads inputs -1..2. Locally connected "same" would start at -2.
  x <- array(c(1, 2, 4, 8, 16, 32), c(1, 6, 1))
  y <- layer_conv_1d(x, 1, 4, strides = 2, padding = "same", use_bias = FALSE,
                     kernel_initializer = "ones", dtype = "float64")
  expect_equal(as.vector(y), c(1 + 2 + 4, 2 + 4 + 8 + 16, 8 + 16 + 32))
  # causal with dilation 2: output t reads t - 4, t - 2, t.
  y <- layer_conv_1d(x, 1, 3, padding = "causal", dilation_rate = 2, use_bias = FALSE,
                     kernel_initializer = "ones", dtype = "float64")
  expect_equal(as.vector(y), c(1, 2, 1 + 4, 2 + 8, 1 + 4 + 16, 2 + 8 + 32))
})

test_that("batches over several tiles and chunks give the reference's outputs", {
  set.seed(203)
  for (data_format in c("channels_last", "channels_first")) {
    shape <- sample_shape(c(12, 11), 3, data_format)
    built <- conv_model(2, shape, filters = 2, kernel_size = 3, padding = "same",
                        data_format = data_format)
    x <- random_array(c(70, shape))
    expected <- ref_conv(x, built$weights[[1]], built$weights[[2]], 3, 1, "same", data_format)
    expect_close(predict(built$model, x, batch_size = 70), expected)
  }
})

test_that("float32 layers and activations match the reference to float precision", {
  set.seed(204)
  x <- random_array(c(3, 8, 8, 4))
  for (activation in c("tanh", "softmax")) {
    model <- keras_model_sequential(input_shape = c(8, 8, 4)) %>%
      layer_conv_2d(6, 3, strides = 2, padding = "same", groups = 2, activation = activation,
                    bias_initializer = initializer_random_normal())
    w <- get_weights(model)
    expected <- ref_conv(x, w[[1]], w[[2]], 3, 2, "same", groups = 2, activation = activation)
    expect_close(predict(model, x), expected, tolerance = 1e-5)
  }
})

conv_fixture_paths <- list.files(test_path("fixtures", "conv"), pattern = "\\.json$",
                                 full.names = TRUE)

test_that("fixtures cover both layers, every padding, data format, dilation and groups", {
  skip_if_not_installed("jsonlite")
  fixtures <- lapply(conv_fixture_paths, read_fixture)
  expect_gte(length(fixtures), 30)
  seen <- function(f) {
    cfg <- f$config
    c(paste(f$layer, cfg$padding, cfg$data_format),
      if (any(unlist(cfg$dilation_rate) > 1)) paste(f$layer, "dilation"),
      if (cfg$groups > 1) paste(f$layer, "groups"),
      if (any(unlist(cfg$strides) > 1)) paste(f$layer, "strides"))
  }
  covered <- unique(unlist(lapply(fixtures, seen)))
  expected <- c(outer(c("Conv1D", "Conv2D"), c("dilation", "groups", "strides"), paste),
                outer("Conv1D", outer(c("valid", "same", "causal"),
                                      c("channels_last", "channels_first"), paste), paste),
                outer("Conv2D", outer(c("valid", "same"),
                                      c("channels_last", "channels_first"), paste), paste))
  expect_setequal(covered, expected)
})

test_that("outputs, weight shapes and parameter counts match tf-keras", {
  skip_if_not_installed("jsonlite")
  for (path in conv_fixture_paths) {
    f <- read_fixture(path)
    cfg <- f$config
    label <- basename(path)
    model <- keras_model_sequential(input_shape = unlist(f$input$shape)[-1]) %>%
      conv_layer(if (f$layer == "Conv1D") 1 else 2)(
        filters = cfg$filters, kernel_size = unlist(cfg$kernel_size),
        strides = unlist(cfg$strides), padding = cfg$padding, data_format = cfg$data_format,
        dilation_rate = unlist(cfg$dilation_rate), groups = cfg$groups,
        use_bias = cfg$use_bias, activation = cfg$activation, dtype = cfg$dtype)
    expect_equal(count_params(model), f$count_params, label = label)
    shapes <- lapply(get_weights(model), function(w) if (is.null(dim(w))) length(w) else dim(w))
    expect_equal(shapes, lapply(f$weight_arrays, dim), label = label)
    set_weights(model, f$weight_arrays)
    y <- predict(model, f$input_array)
    expect_equal(dim(y), dim(f$output_array), label = label)
    tolerance <- if (cfg$dtype == "float64") 1e-10 else 1e-5
    expect_equal(as.vector(y), as.vector(f$output_array), tolerance = tolerance, label = label)
  }
})

conv_gradient_model <- function(rank, shape, ..., activation = "tanh") {
  keras_model_sequential(input_shape = shape, dtype = "float64") %>%
    conv_layer(rank)(..., activation = activation,
                     bias_initializer = initializer_random_normal(stddev = 0.1)) %>%
    layer_flatten() %>%
    layer_dense(3)
}

test_that("gradients are right for every padding, dilation, groups and data format", {
  set.seed(205)
  configs <- list(
    list(rank = 2, shape = c(6, 5, 2), filters = 3, kernel_size = c(3, 2)),
    list(rank = 2, shape = c(4, 7, 6), filters = 4, kernel_size = 3, strides = 2,
         padding = "same", groups = 2, data_format = "channels_first"),
    list(rank = 2, shape = c(8, 7, 3), filters = 3, kernel_size = c(2, 3), padding = "same",
         dilation_rate = c(3, 2), groups = 3),
    list(rank = 1, shape = c(9, 2), filters = 2, kernel_size = 3, padding = "causal",
         dilation_rate = 2),
    list(rank = 1, shape = c(4, 10), filters = 6, kernel_size = 4, strides = 3,
         padding = "same", groups = 2, data_format = "channels_first")
  )
  for (cfg in configs) {
    model <- do.call(conv_gradient_model, cfg)
    model %>% compile(optimizer = "sgd", loss = "mse")
    expect_gradients_match(model, random_array(c(4, cfg$shape)), random_array(c(4, 3)))
  }
})

test_that("stacked convolutions pass input gradients back", {
  set.seed(206)
  model <- keras_model_sequential(input_shape = c(3, 9, 8), dtype = "float64") %>%
    layer_conv_2d(4, c(2, 3), padding = "same", data_format = "channels_first",
                  activation = "elu") %>%
    layer_conv_2d(6, 3, strides = c(2, 1), groups = 2, data_format = "channels_first",
                  activation = "tanh", use_bias = FALSE) %>%
    layer_conv_2d(2, 2, dilation_rate = 2, padding = "same", data_format = "channels_first") %>%
    layer_flatten() %>%
    layer_dense(2)
  model %>% compile(optimizer = "sgd", loss = "mse")
  expect_gradients_match(model, random_array(c(3, 3, 9, 8)), random_array(c(3, 2)))

  one_d <- keras_model_sequential(input_shape = c(12, 4), dtype = "float64") %>%
    layer_conv_1d(4, 3, padding = "causal", dilation_rate = 2, groups = 4) %>%
    layer_conv_1d(2, 2, strides = 2, activation = "relu") %>%
    layer_flatten() %>%
    layer_dense(1)
  one_d %>% compile(optimizer = "sgd", loss = "mae")
  expect_gradients_match(one_d, random_array(c(5, 12, 4)), random_array(c(5, 1)))
})

test_that("gradients over many chunks match, and outputs and gradients do not depend on threads", {
  set.seed(207)
  # backward() cuts 37 samples of 20 x 18 x 4 into 13 chunks (the last of
  # one sample) and their 360 output positions into 2 blocks.
  model <- conv_gradient_model(2, c(20, 18, 4), filters = 4, kernel_size = 3,
                               padding = "same", groups = 2)
  model %>% compile(optimizer = "sgd", loss = "mse")
  x <- random_array(c(37, 20, 18, 4))
  y <- random_array(c(37, 3))
  expect_gradients_match(model, x, y, coords = 6)
  t <- trainer_for(model, x, y)
  d <- t$data
  gradients <- lapply(c(1L, 2L, 3L), function(threads) {
    lcnn:::.trainer_gradients(t$trainer, d$x, d$y, d$weights, d$n, c(1, 2), threads)
  })
  expect_identical(gradients[[2]], gradients[[1]])
  expect_identical(gradients[[3]], gradients[[1]])
  predictions <- lapply(c(1, 3), function(threads) {
    withr::local_options(lcnn.num_threads = threads)
    predict(model, x)
  })
  expect_identical(predictions[[2]], predictions[[1]])
})

test_that("weights have Keras's shapes and round-trip through get/set_weights()", {
  set.seed(208)
  model <- keras_model_sequential(input_shape = c(9, 8, 6)) %>%
    layer_conv_2d(4, c(3, 2), groups = 2, dtype = "float64") %>%
    layer_conv_2d(3, 2, use_bias = FALSE, dtype = "float64")
  w <- get_weights(model)
  expect_equal(lapply(w, dim), list(c(3L, 2L, 3L, 4L), 4L, c(2L, 2L, 4L, 3L)))
  new <- lapply(w, function(a) a + 1)
  set_weights(model, new)
  expect_equal(get_weights(model), new)
  expect_equal(get_weights(model$layers[[1]]), new[1:2])
  one_d <- keras_model_sequential(input_shape = c(10, 4)) %>% layer_conv_1d(6, 5, groups = 2)
  expect_equal(lapply(get_weights(one_d), dim), list(c(5L, 2L, 6L), 6L))
  expect_error(set_weights(one_d, list(array(0, c(5, 4, 6)), rep(0, 6))),
               class = "lcnn_error_shape")
})

test_that("weights = sets the initial values; float32 weights hold float32 values", {
  w <- list(array(seq_len(12) / 10, c(3, 2, 2)), array(c(0.5, -0.5)))
  model <- keras_model_sequential(input_shape = c(5, 2)) %>%
    layer_conv_1d(2, 3, weights = w, dtype = "float64")
  expect_equal(get_weights(model), w)
  x <- array(1, c(1, 5, 2))
  expect_equal(as.vector(predict(model, x)),
               rep(c(sum(w[[1]][, , 1]) + 0.5, sum(w[[1]][, , 2]) - 0.5), each = 3))
  single <- keras_model_sequential(input_shape = c(5, 2)) %>% layer_conv_1d(2, 3, weights = w)
  expect_equal(get_weights(single)[[1]], w[[1]], tolerance = 1e-6)
  expect_false(identical(get_weights(single)[[1]], w[[1]]))
})

test_that("glorot_uniform uses Keras's fans of the grouped kernel", {
  set.seed(209)
  model <- keras_model_sequential(input_shape = c(10, 10, 8)) %>%
    layer_conv_2d(32, c(3, 5), groups = 4, dtype = "float64")
  kernel <- get_weights(model)[[1]]
  # fan_in = 3 * 5 * 8 / 4, fan_out = 3 * 5 * 32
  limit <- sqrt(6 / (3 * 5 * 2 + 3 * 5 * 32))
  expect_lte(max(abs(kernel)), limit)
  expect_gt(max(abs(kernel)), 0.99 * limit)
  expect_equal(get_weights(model)[[2]], array(0, 32))
})

test_that("output shapes, parameter counts and summary() follow Keras", {
  k_clear_session()
  model <- keras_model_sequential(input_shape = c(32, 32, 3)) %>%
    layer_conv_2d(filters = 64, kernel_size = c(3, 3)) %>%
    layer_conv_2d(filters = 32, kernel_size = 3, strides = 2, padding = "same", groups = 2)
  expect_equal(model$layers[[1]]$output_shape, list(NULL, 30L, 30L, 64L))
  expect_equal(model$output_shape, list(NULL, 15L, 15L, 32L))
  expect_equal(count_params(model), (3 * 3 * 3 * 64 + 64) + (3 * 3 * 32 * 32 + 32))
  expect_snapshot(summary(model))
  cf <- keras_model_sequential(input_shape = c(3, 20, 21)) %>%
    layer_conv_2d(8, c(5, 3), dilation_rate = c(2, 3), data_format = "channels_first")
  expect_equal(cf$output_shape, list(NULL, 8L, 12L, 15L))
  one_d <- keras_model_sequential(input_shape = c(100, 4)) %>%
    layer_conv_1d(16, 7, strides = 3, padding = "causal") %>%
    layer_conv_1d(8, 5, dilation_rate = 4, padding = "valid")
  expect_equal(one_d$output_shape, list(NULL, 18L, 8L))
  expect_equal(count_params(one_d), 7 * 4 * 16 + 16 + 5 * 16 * 8 + 8)
})

test_that("layers are objects, compose with models and apply to arrays", {
  k_clear_session()
  a <- layer_conv_2d(filters = 2, kernel_size = 3)
  b <- layer_conv_2d(filters = 2, kernel_size = 3)
  c1 <- layer_conv_1d(filters = 2, kernel_size = 3, name = "mine")
  expect_equal(c(a$name, b$name, c1$name, layer_conv_1d(filters = 1, kernel_size = 1)$name),
               c("conv2d", "conv2d_1", "mine", "conv1d"))
  expect_equal(a$type, "Conv2D")
  expect_false(a$built)
  model <- keras_model_sequential(input_shape = c(6, 6, 1))
  returned <- withVisible(model %>% layer_conv_2d(2, 3))
  expect_false(returned$visible)
  expect_identical(returned$value, model)
  model |> layer_conv_2d(1, 2, name = "piped")
  expect_equal(model$output_shape, list(NULL, 3L, 3L, 1L))
  x <- array(1:18 / 10, c(1, 3, 6, 1))
  y <- layer_conv_2d(x, 1, c(1, 2), strides = c(1, 2), kernel_initializer = "ones",
                     dtype = "float64")
  expect_equal(y[1, , , 1], matrix(x[1, , , 1] %*% kronecker(diag(3), c(1, 1)), 3))
  options <- withr::local_options(lcnn.image_data_format = "channels_first")
  expect_equal(layer_conv_2d(filters = 1, kernel_size = 1)$config$data_format, "channels_first")
  expect_equal(layer_conv_1d(filters = 1, kernel_size = 1)$config$data_format, "channels_last")
})

test_that("a small convolutional model learns", {
  set.seed(210)
  # Classify whether a 6 x 6 image holds a vertical or a horizontal bar.
  n <- 64
  x <- array(rnorm(n * 36, sd = 0.1), c(n, 6, 6, 1))
  labels <- rep(0:1, length.out = n)
  for (i in seq_len(n)) {
    at <- sample(6, 1)
    if (labels[i] == 1) x[i, , at, 1] <- x[i, , at, 1] + 1 else x[i, at, , 1] <- x[i, at, , 1] + 1
  }
  model <- keras_model_sequential(input_shape = c(6, 6, 1)) %>%
    layer_conv_2d(4, c(3, 3), padding = "same", activation = "relu") %>%
    layer_conv_2d(4, 2, strides = 2, groups = 2, activation = "relu") %>%
    layer_flatten() %>%
    layer_dense(1, activation = "sigmoid")
  model %>% compile(optimizer = optimizer_adam(0.02), loss = "binary_crossentropy",
                    metrics = "accuracy")
  before <- evaluate(model, x, labels)$loss
  history <- model %>% fit(x, labels, epochs = 15, batch_size = 16, verbose = 0)
  expect_lt(tail(history$metrics$loss, 1), before / 2)
  expect_gt(evaluate(model, x, labels)$accuracy, 0.9)
})

test_that("regularizers and constraints act on the Keras-layout kernel", {
  set.seed(211)
  model <- keras_model_sequential(input_shape = c(7, 4), dtype = "float64") %>%
    layer_conv_1d(6, 3, groups = 2, kernel_initializer = initializer_random_normal(stddev = 3),
                  kernel_regularizer = regularizer_l2(0.01),
                  kernel_constraint = constraint_maxnorm(1, axis = c(0, 1))) %>%
    layer_flatten() %>%
    layer_dense(1)
  model %>% compile(optimizer = optimizer_sgd(0.1), loss = "mse")
  expect_gradients_match(model, random_array(c(4, 7, 4)), random_array(c(4, 1)))
  model %>% fit(random_array(c(8, 7, 4)), random_array(c(8, 1)), epochs = 2, verbose = 0)
  kernel <- get_weights(model)[[1]]
  norms <- sqrt(apply(kernel^2, 3, sum))
  expect_true(all(norms <= 1 + 1e-6))
  expect_true(any(norms > 0.99))
  expect_error(keras_model_sequential(input_shape = c(7, 4)) %>%
                 layer_conv_1d(6, 3, kernel_constraint = constraint_maxnorm(1, axis = 3)),
               class = "lcnn_error_argument")
})

test_that("bad arguments and shapes raise classed errors naming them", {
  expect_error(layer_conv_2d(filters = 0, kernel_size = 3), class = "lcnn_error_argument")
  expect_error(layer_conv_2d(filters = 2, kernel_size = c(3, 0)),
               class = "lcnn_error_argument")
  expect_error(layer_conv_1d(filters = 2, kernel_size = 3, dilation_rate = 0),
               class = "lcnn_error_argument")
  expect_error(layer_conv_2d(filters = 2, kernel_size = 3, groups = 1.5),
               class = "lcnn_error_argument")
  expect_error(layer_conv_2d(filters = 2, kernel_size = 3, strides = c(1, 2),
                             dilation_rate = c(2, 1)),
               class = "lcnn_error_argument")
  expect_error(layer_conv_2d(filters = 2, kernel_size = 3, input_shape = c(5, 5)),
               class = "lcnn_error_argument")
  model <- keras_model_sequential(input_shape = c(5, 5, 3))
  expect_error(model %>% layer_conv_2d(4, 3, groups = 2), class = "lcnn_error_shape")
  expect_error(model %>% layer_conv_2d(4, 3, dilation_rate = 3), class = "lcnn_error_shape")
  expect_length(model$layers, 0)
  expect_error(layer_conv_1d(array(1, c(2, 5, 5, 1)), 1, 3), class = "lcnn_error_shape")
  expect_snapshot(error = TRUE, {
    layer_conv_2d(filters = 0, kernel_size = 3)
    layer_conv_2d(filters = 4, kernel_size = c(3, 3, 3))
    layer_conv_1d(filters = 4, kernel_size = 3, strides = 0)
    layer_conv_2d(filters = 4, kernel_size = 3, padding = "causal")
    layer_conv_1d(filters = 4, kernel_size = 3, padding = "full")
    layer_conv_2d(filters = 4, kernel_size = 3, dilation_rate = c(1, 0))
    layer_conv_2d(filters = 4, kernel_size = 3, strides = 2, dilation_rate = 2)
    layer_conv_2d(filters = 4, kernel_size = 3, groups = 0)
    layer_conv_2d(filters = 4, kernel_size = 3, groups = 3)
    layer_conv_1d(filters = 4, kernel_size = 3, data_format = "NWC")
    layer_conv_1d(filters = 4, kernel_size = 3, input_shape = c(4, 4, 4))
    layer_conv_2d(kernel_size = 3)
  })
  k_clear_session()
  expect_snapshot(error = TRUE, {
    keras_model_sequential(input_shape = c(6, 6, 3)) %>% layer_conv_2d(4, 3, groups = 2)
    keras_model_sequential(input_shape = c(4, 4, 3)) %>% layer_conv_2d(4, 3, dilation_rate = 2)
    keras_model_sequential(input_shape = c(4, 4)) %>% layer_conv_2d(4, 3)
  })
})
