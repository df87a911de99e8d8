pool_layers <- list(
  max = list(layer_max_pooling_1d, layer_max_pooling_2d),
  average = list(layer_average_pooling_1d, layer_average_pooling_2d)
)
global_pool_layers <- list(
  max = list(layer_global_max_pooling_1d, layer_global_max_pooling_2d),
  average = list(layer_global_average_pooling_1d, layer_global_average_pooling_2d)
)

# Every mode: 1D and 2D, valid and same, strides equal to, below and above
# the pool size, both data formats.
pool_configs <- list(
  list(shape = c(9, 2), pool_size = 3, strides = NULL, padding = "valid"),
  list(shape = c(9, 2), pool_size = 2, strides = NULL, padding = "same"),
  list(shape = c(10, 3), pool_size = 4, strides = 1, padding = "same"),
  list(shape = c(10, 2), pool_size = 2, strides = 3, padding = "valid"),
  list(shape = c(7, 1), pool_size = 5, strides = 2, padding = "same"),
  list(shape = c(5, 6, 2), pool_size = c(2, 2), strides = NULL, padding = "same"),
  list(shape = c(7, 5, 3), pool_size = c(3, 2), strides = c(2, 1), padding = "valid"),
  list(shape = c(7, 5, 3), pool_size = c(3, 2), strides = c(2, 1), padding = "same"),
  list(shape = c(6, 7, 1), pool_size = c(2, 3), strides = c(3, 2), padding = "same"),
  list(shape = c(5, 5, 2), pool_size = c(1, 1), strides = c(2, 2), padding = "valid"),
  list(shape = c(4, 4, 2), pool_size = c(4, 4), strides = c(1, 1), padding = "valid")
)

# The sample shape of `shape` (channels last) in `data_format`.
in_format <- function(shape, data_format) {
  if (data_format == "channels_last") shape else c(shape[length(shape)], shape[-length(shape)])
}

pool_layer_for <- function(mode, cfg, data_format) {
  make <- pool_layers[[mode]][[length(cfg$shape) - 1]]
  function(object) {
    make(object, pool_size = cfg$pool_size, strides = cfg$strides, padding = cfg$padding,
         data_format = data_format)
  }
}

test_that("max and average pooling match the naive reference in every mode", {
  set.seed(81)
  for (cfg in pool_configs) for (mode in names(pool_layers)) {
    for (data_format in c("channels_last", "channels_first")) {
      shape <- in_format(cfg$shape, data_format)
      x <- random_array(c(3, shape))
      pool <- pool_layer_for(mode, cfg, data_format)
      model <- pool(keras_model_sequential(input_shape = shape, dtype = "float64"))
      expected <- ref_pool(x, mode, cfg$pool_size, cfg$strides %||% cfg$pool_size,
                           cfg$padding, data_format)
      label <- paste(mode, data_format, format(cfg))
      expect_equal(unlist(model$output_shape[-1]), dim(expected)[-1], label = label)
      expect_close(predict(model, x), expected)
      expect_close(pool(x), ref_pool(x, mode, cfg$pool_size, cfg$strides %||% cfg$pool_size,
                                     cfg$padding, data_format), tolerance = 1e-6)
    }
  }
})

test_that("'same' pads as TensorFlow: the smaller half before, padding left out", {
  x <- array(c(1, 2, 3, 4, 5), c(1, 5, 1))
  # out = 3, total padding (3 - 1) * 2 + 4 - 5 = 3: one before, two after.
  expect_equal(as.vector(layer_average_pooling_1d(x, 4, strides = 2, padding = "same")),
               c(mean(1:3), mean(2:5), mean(4:5)))
  expect_equal(as.vector(layer_max_pooling_1d(-x, 4, strides = 2, padding = "same")),
               c(-1, -2, -4))
  # Keras's default strides are the pool size.
  expect_equal(as.vector(layer_max_pooling_1d(x)), c(2, 4))
})

test_that("global pooling matches the reference for every format and keepdims", {
  set.seed(82)
  for (shape in list(c(7, 3), c(4, 5, 3))) for (mode in names(global_pool_layers)) {
    for (data_format in c("channels_last", "channels_first")) for (keepdims in c(FALSE, TRUE)) {
      sample_shape <- in_format(shape, data_format)
      x <- random_array(c(4, sample_shape))
      make <- global_pool_layers[[mode]][[length(shape) - 1]]
      model <- keras_model_sequential(input_shape = sample_shape, dtype = "float64") %>%
        make(data_format = data_format, keepdims = keepdims)
      expected <- ref_global_pool(x, mode, data_format, keepdims)
      expect_equal(unlist(model$output_shape[-1]), dim(expected)[-1])
      expect_close(predict(model, x), expected)
    }
  }
})

# An identity locally connected layer (kernel size 1, one filter per
# channel) in front of `add_layers`, then flatten and a dense unit whose
# kernel is the sample's upstream gradient in C order: under an MAE loss
# far below its target, the bias gradient of the first layer is minus the
# input gradient of sum(upstream * layers(x)). Computed per sample, in
# float64, through the engine trainer.
engine_input_gradient <- function(add_layers, x, upstream, data_format = "channels_last") {
  rank <- length(dim(x)) - 2
  shape <- dim(x)[-1]
  parts <- lcnn:::split_channels(shape, data_format)
  positions <- prod(parts$spatial)
  channels <- parts$channels
  lc <- if (rank == 1) layer_locally_connected_1d else layer_locally_connected_2d
  identity <- array(0, c(positions, channels, channels))
  for (p in seq_len(positions)) identity[p, , ] <- diag(channels)
  c_order <- function(a) as.vector(aperm(a, rev(seq_along(dim(a)))))
  # Sample b of an array of any rank (the batch is the fastest axis).
  sample_of <- function(a, b) {
    d <- dim(a)
    array(a[(seq_len(prod(d[-1])) - 1) * d[1] + b], d[-1])
  }
  grad <- array(0, dim(x))
  for (b in seq_len(dim(x)[1])) {
    model <- keras_model_sequential(input_shape = shape, dtype = "float64") %>%
      lc(filters = channels, kernel_size = 1, data_format = data_format,
         weights = list(identity, array(0, c(parts$spatial, channels))))
    add_layers(model)
    model %>%
      layer_flatten(data_format = "channels_last") %>%
      layer_dense(1, use_bias = FALSE,
                  weights = list(matrix(c_order(sample_of(upstream, b)), ncol = 1)))
    model %>% compile(optimizer = "sgd", loss = "mae")
    t <- trainer_for(model, array(sample_of(x, b), c(1, shape)), matrix(1e6))
    g <- lcnn:::.trainer_gradients(t$trainer, t$data$x, t$data$y, NULL, 1, c(1, 2), 1L)[[2]]
    # lcnn's bias layout: position-major (row-major positions), channel fastest.
    g <- -array(g, c(channels, rev(parts$spatial)))
    g <- aperm(g, c(1, rev(seq_len(rank) + 1)))
    if (data_format == "channels_last") g <- aperm(g, c(seq_len(rank) + 1, 1))
    grad[(seq_along(g) - 1) * dim(x)[1] + b] <- g
  }
  grad
}

test_that("pooling input gradients match the reference: first maximum, valid entries", {
  set.seed(83)
  for (cfg in pool_configs[c(2, 3, 8, 9)]) for (mode in names(pool_layers)) {
    for (data_format in c("channels_last", "channels_first")) {
      shape <- in_format(cfg$shape, data_format)
      # Small integers: many windows hold their maximum twice or more.
      x <- array(sample(0:2, prod(c(2, shape)), replace = TRUE), c(2, shape))
      strides <- cfg$strides %||% cfg$pool_size
      upstream <- random_array(dim(ref_pool(x, mode, cfg$pool_size, strides, cfg$padding,
                                            data_format)))
      expected <- ref_pool_gradient(x, upstream, mode, cfg$pool_size, strides, cfg$padding,
                                    data_format)
      actual <- engine_input_gradient(pool_layer_for(mode, cfg, data_format), x, upstream,
                                      data_format)
      expect_close(actual, expected)
    }
  }
})

test_that("global max pooling splits the gradient of a tied maximum, as reduce_max does", {
  x <- array(c(2, 0, 2, 1, 2, 0), c(1, 6, 1))
  upstream <- matrix(0.9, 1, 1)
  actual <- engine_input_gradient(function(m) layer_global_max_pooling_1d(m), x, upstream)
  expect_equal(as.vector(actual), c(0.3, 0, 0.3, 0, 0.3, 0))
  expect_close(actual, ref_global_pool_gradient(x, upstream, "max"))
  # Local max pooling over the same window gives it all to the first.
  local <- engine_input_gradient(function(m) layer_max_pooling_1d(m, 6), x, array(0.9, c(1, 1, 1)))
  expect_equal(as.vector(local), c(0.9, 0, 0, 0, 0, 0))
})

test_that("gradients are right for every pooling layer and mode", {
  set.seed(84)
  for (cfg in pool_configs[c(1, 3, 5, 7, 8, 9)]) for (mode in names(pool_layers)) {
    for (data_format in c("channels_last", "channels_first")) {
      shape <- in_format(cfg$shape, data_format)
      lc <- if (length(shape) == 2) layer_locally_connected_1d else layer_locally_connected_2d
      model <- keras_model_sequential(input_shape = shape, dtype = "float64") %>%
        lc(filters = 2, kernel_size = 1, data_format = data_format, activation = "tanh",
           bias_initializer = initializer_random_normal(stddev = 0.1))
      pool_layer_for(mode, cfg, data_format)(model)
      model %>% layer_flatten() %>% layer_dense(2)
      model %>% compile(optimizer = "sgd", loss = "mse")
      expect_gradients_match(model, random_array(c(3, shape)), random_array(c(3, 2)), coords = 8)
    }
  }
  for (shape in list(c(7, 3), c(4, 5, 3))) for (mode in names(global_pool_layers)) {
    for (data_format in c("channels_last", "channels_first")) {
      sample_shape <- in_format(shape, data_format)
      make <- global_pool_layers[[mode]][[length(shape) - 1]]
      model <- keras_model_sequential(input_shape = sample_shape, dtype = "float64") %>%
        layer_dense(3, activation = "tanh") %>%
        make(data_format = data_format, keepdims = data_format == "channels_first") %>%
        layer_flatten() %>%
        layer_dense(2)
      model %>% compile(optimizer = "sgd", loss = "mse")
      expect_gradients_match(model, random_array(c(3, sample_shape)), random_array(c(3, 2)),
                             coords = 8)
    }
  }
})

test_that("pooling results do not depend on the thread count", {
  set.seed(85)
  x <- random_array(c(600, 6, 5, 3))
  upstream <- random_array(c(600, 3, 3, 3))
  run <- function(threads) {
    withr::local_options(lcnn.num_threads = threads)
    model <- keras_model_sequential(input_shape = c(6, 5, 3), dtype = "float64") %>%
      layer_dense(3, kernel_initializer = "ones") %>%
      layer_max_pooling_2d(c(3, 2), strides = c(2, 2), padding = "same") %>%
      layer_flatten() %>%
      layer_dense(1, kernel_initializer = "ones")
    model %>% compile(optimizer = "sgd", loss = "mse")
    t <- trainer_for(model, x, matrix(0, 600, 1))
    list(predict(model, x),
         lcnn:::.trainer_gradients(t$trainer, t$data$x, t$data$y, NULL, 600, c(1, 2), threads))
  }
  expect_identical(run(1), run(2))
})

pool_fixture_paths <- list.files(test_path("fixtures"), pattern = "^pool_.*\\.json$",
                                 full.names = TRUE)

pool_layer_of_class <- list(
  MaxPooling1D = layer_max_pooling_1d, MaxPooling2D = layer_max_pooling_2d,
  AveragePooling1D = layer_average_pooling_1d, AveragePooling2D = layer_average_pooling_2d,
  GlobalMaxPooling1D = layer_global_max_pooling_1d,
  GlobalMaxPooling2D = layer_global_max_pooling_2d,
  GlobalAveragePooling1D = layer_global_average_pooling_1d,
  GlobalAveragePooling2D = layer_global_average_pooling_2d
)

test_that("pooling outputs and input gradients match tf-keras", {
  skip_if_not_installed("jsonlite")
  expect_gte(length(pool_fixture_paths), 60)
  with_gradient <- 0
  for (path in pool_fixture_paths) {
    f <- read_fixture(path)
    label <- basename(path)
    args <- fixture_arguments(f$args)
    add_layer <- function(object) do.call(pool_layer_of_class[[f$layer]], c(list(object), args))
    model <- add_layer(keras_model_sequential(input_shape = dim(f$input_array)[-1],
                                              dtype = f$dtype))
    y <- predict(model, f$input_array)
    expect_equal(dim(y), dim(f$output_array), label = label)
    tolerance <- if (f$dtype == "float64") 1e-12 else 1e-6
    expect_equal(as.vector(y), as.vector(f$output_array), tolerance = tolerance, label = label)
    if (!is.null(f$input_gradient)) {
      with_gradient <- with_gradient + 1
      grad <- engine_input_gradient(add_layer, f$input_array, fixture_array(f$upstream),
                                    args$data_format)
      expect_equal(as.vector(grad), as.vector(fixture_array(f$input_gradient)),
                   tolerance = 1e-6, label = paste(label, "input gradient"))
    }
  }
  expect_gte(with_gradient, 40)
  # Fixtures cover both formats, both paddings, ties and keepdims.
  names <- basename(pool_fixture_paths)
  for (part in c("_first_", "_last_", "_same_", "_valid_", "_ties", "_keep_", "_drop_")) {
    expect_true(any(grepl(part, names, fixed = TRUE)), label = part)
  }
})

test_that("pooling layers have Keras's names, output shapes and no weights", {
  k_clear_session()
  model <- keras_model_sequential(input_shape = c(12, 10, 3)) %>%
    layer_max_pooling_2d() %>%
    layer_average_pooling_2d(pool_size = 3, strides = 1, padding = "same",
                             data_format = "channels_last") %>%
    layer_global_max_pooling_2d(keepdims = TRUE) %>%
    layer_global_average_pooling_2d()
  expect_equal(vapply(model$layers, function(l) l$name, ""),
               c("max_pooling2d", "average_pooling2d", "global_max_pooling2d",
                 "global_average_pooling2d"))
  expect_equal(model$layers[[1]]$output_shape, list(NULL, 6L, 5L, 3L))
  expect_equal(model$output_shape, list(NULL, 3L))
  expect_equal(count_params(model), 0)
  expect_equal(get_weights(model), list())
  expect_snapshot(summary(model))
  k_clear_session()
  model <- keras_model_sequential(input_shape = c(3, 11)) %>%
    layer_max_pooling_1d(3, data_format = "channels_first") %>%
    layer_average_pooling_1d(padding = "SAME", data_format = "channels_first") %>%
    layer_global_max_pooling_1d(data_format = "channels_first", keepdims = TRUE) %>%
    layer_global_average_pooling_1d()
  expect_snapshot(summary(model))
  layer <- layer_max_pooling_2d(pool_size = 3)
  expect_equal(layer$config$strides, c(3L, 3L))
  expect_false(layer$built)
})

test_that("a model with pooling layers trains", {
  set.seed(86)
  x <- random_array(c(64, 8, 8, 2))
  y <- matrix(apply(x, 1, max) > 0.9, ncol = 1) * 1
  model <- keras_model_sequential(input_shape = c(8, 8, 2)) %>%
    layer_locally_connected_2d(4, c(3, 3), activation = "relu") %>%
    layer_max_pooling_2d(padding = "same") %>%
    layer_average_pooling_2d(pool_size = c(2, 1)) %>%
    layer_global_max_pooling_2d() %>%
    layer_dense(1, activation = "sigmoid")
  model %>% compile(optimizer = optimizer_adam(0.01), loss = "binary_crossentropy")
  before <- evaluate(model, x, y, verbose = 0)
  history <- model %>% fit(x, y, epochs = 5, batch_size = 16, verbose = 0)
  expect_length(history$metrics$loss, 5)
  expect_lt(evaluate(model, x, y, verbose = 0)[["loss"]], before[["loss"]])
})

test_that("bad pooling arguments and inputs raise classed errors", {
  expect_error(layer_max_pooling_2d(pool_size = 0), class = "lcnn_error_argument")
  expect_error(layer_max_pooling_2d(pool_size = c(2, 2, 2)), class = "lcnn_error_argument")
  expect_error(layer_average_pooling_1d(strides = 1.5), class = "lcnn_error_argument")
  expect_error(layer_max_pooling_1d(padding = "causal"), class = "lcnn_error_argument")
  expect_error(layer_max_pooling_1d(data_format = "nchw"), class = "lcnn_error_argument")
  expect_error(layer_global_max_pooling_2d(keepdims = NA), class = "lcnn_error_argument")
  expect_error(layer_max_pooling_2d(array(0, c(1, 4, 3))), class = "lcnn_error_shape")
  expect_error(layer_max_pooling_2d(array(0, c(1, 1, 4, 3))), class = "lcnn_error_shape")
  expect_error(layer_global_average_pooling_1d(array(0, c(1, 4, 3, 2))),
               class = "lcnn_error_shape")
  k_clear_session()
  expect_snapshot(error = TRUE, {
    layer_max_pooling_2d(pool_size = 0)
    layer_average_pooling_2d(strides = c(1, 2, 3))
    layer_max_pooling_1d(padding = "causal")
    layer_average_pooling_1d(data_format = "nchw")
    layer_global_max_pooling_1d(keepdims = "yes")
    layer_max_pooling_2d(array(0, c(1, 4, 3)))
    layer_max_pooling_2d(array(0, c(1, 1, 4, 3)), pool_size = c(2, 2))
    keras_model_sequential(input_shape = c(4, 3, 2)) %>% layer_global_max_pooling_1d()
  })
})
