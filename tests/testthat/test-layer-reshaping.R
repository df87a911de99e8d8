# Each padding or cropping form as Keras takes it, with the amounts it means
# per spatial axis (before, after).
border_forms_1d <- list(
  list(arg = 1, before = 1, after = 1),
  list(arg = c(2, 0), before = 2, after = 0),
  list(arg = list(0, 3), before = 0, after = 3)
)
border_forms_2d <- list(
  list(arg = 1, before = c(1, 1), after = c(1, 1)),
  list(arg = c(1, 2), before = c(1, 2), after = c(1, 2)),
  list(arg = list(c(1, 0), c(2, 3)), before = c(1, 2), after = c(0, 3)),
  list(arg = list(2, c(0, 1)), before = c(2, 0), after = c(2, 1))
)

test_that("zero padding matches the reference for every form and data format", {
  set.seed(91)
  x <- random_array(c(3, 6, 2))
  for (form in border_forms_1d) {
    model <- keras_model_sequential(input_shape = c(6, 2), dtype = "float64") %>%
      layer_zero_padding_1d(padding = form$arg)
    expect_close(predict(model, x), ref_pad_crop(x, form$before, form$after))
  }
  for (data_format in c("channels_last", "channels_first")) {
    shape <- if (data_format == "channels_last") c(4, 5, 2) else c(2, 4, 5)
    x <- random_array(c(3, shape))
    for (form in border_forms_2d) {
      model <- keras_model_sequential(input_shape = shape, dtype = "float64") %>%
        layer_zero_padding_2d(padding = form$arg, data_format = data_format)
      expected <- ref_pad_crop(x, form$before, form$after, data_format)
      expect_equal(unlist(model$output_shape[-1]), dim(expected)[-1])
      expect_close(predict(model, x), expected)
    }
  }
  # The defaults pad one on each side.
  expect_equal(dim(layer_zero_padding_1d(array(1, c(2, 3, 1)))), c(2L, 5L, 1L))
  expect_equal(dim(layer_zero_padding_2d(array(1, c(2, 3, 4, 1)))), c(2L, 5L, 6L, 1L))
})

test_that("cropping matches the reference for every form and data format", {
  set.seed(92)
  x <- random_array(c(3, 7, 2))
  for (form in border_forms_1d) {
    model <- keras_model_sequential(input_shape = c(7, 2), dtype = "float64") %>%
      layer_cropping_1d(cropping = form$arg)
    expect_close(predict(model, x), ref_pad_crop(x, -form$before, -form$after))
  }
  for (data_format in c("channels_last", "channels_first")) {
    shape <- if (data_format == "channels_last") c(6, 7, 2) else c(2, 6, 7)
    x <- random_array(c(3, shape))
    for (form in border_forms_2d) {
      model <- keras_model_sequential(input_shape = shape, dtype = "float64") %>%
        layer_cropping_2d(cropping = form$arg, data_format = data_format)
      expected <- ref_pad_crop(x, -form$before, -form$after, data_format)
      expect_equal(unlist(model$output_shape[-1]), dim(expected)[-1])
      expect_close(predict(model, x), expected)
    }
  }
  # Defaults: 1D crops one at each end, 2D crops nothing.
  x <- random_array(c(2, 4, 5, 3))
  expect_equal(layer_cropping_2d(x), x, tolerance = 1e-6)
  expect_equal(dim(layer_cropping_1d(array(1, c(2, 5, 1)))), c(2L, 3L, 1L))
})

test_that("reshape follows Keras's C order and infers -1", {
  set.seed(93)
  x <- random_array(c(3, 4, 6))
  for (target in list(c(3, 8), c(-1, 2), c(2, 3, 4), 24, c(2, -1, 3))) {
    model <- keras_model_sequential(input_shape = c(4, 6), dtype = "float64") %>%
      layer_reshape(target)
    expected <- ref_reshape(x, target)
    expect_equal(unlist(model$output_shape[-1]), dim(expected)[-1])
    expect_close(predict(model, x), expected)
  }
  # Rows are filled first, as NumPy does: not R's dim<-.
  y <- layer_reshape(array(1:6, c(1, 6)), c(2, 3))
  expect_equal(y[1, , ], matrix(1:6, 2, byrow = TRUE))
  # reshape then flatten gives back the input.
  x <- random_array(c(2, 3, 4, 5))
  model <- keras_model_sequential(input_shape = c(3, 4, 5), dtype = "float64") %>%
    layer_reshape(list(5, -1)) %>%
    layer_flatten()
  expect_close(predict(model, x), layer_flatten(x), tolerance = 1e-6)
})

test_that("permute reorders the axes of each sample", {
  set.seed(94)
  x <- random_array(c(3, 2, 3, 4))
  for (dims in list(c(1, 2, 3), c(3, 1, 2), c(2, 3, 1), c(1, 3, 2), c(3, 2, 1))) {
    model <- keras_model_sequential(input_shape = c(2, 3, 4), dtype = "float64") %>%
      layer_permute(dims)
    expected <- ref_permute(x, dims)
    expect_equal(unlist(model$output_shape[-1]), dim(expected)[-1])
    expect_close(predict(model, x), expected)
    expect_close(expected, aperm(x, c(1, dims + 1)))
  }
  x <- random_array(c(2, 3, 5))
  expect_close(layer_permute(x, c(2, 1)), aperm(x, c(1, 3, 2)), tolerance = 1e-6)
})

test_that("gradients are right for every padding, cropping, reshape and permute", {
  set.seed(95)
  check <- function(shape, add_layer, data_format = "channels_last") {
    lc <- if (length(shape) == 2) layer_locally_connected_1d else layer_locally_connected_2d
    model <- keras_model_sequential(input_shape = shape, dtype = "float64") %>%
      lc(filters = 2, kernel_size = 1, activation = "tanh", data_format = data_format,
         bias_initializer = initializer_random_normal(stddev = 0.1))
    add_layer(model)
    model %>% layer_flatten() %>% layer_dense(2)
    model %>% compile(optimizer = "sgd", loss = "mse")
    expect_gradients_match(model, random_array(c(3, shape)), random_array(c(3, 2)), coords = 8)
  }
  for (form in border_forms_1d) {
    check(c(6, 2), function(m) layer_zero_padding_1d(m, form$arg))
    check(c(6, 2), function(m) layer_cropping_1d(m, form$arg))
  }
  for (data_format in c("channels_last", "channels_first")) for (form in border_forms_2d) {
    shape <- if (data_format == "channels_last") c(6, 7, 2) else c(2, 6, 7)
    check(shape, function(m) layer_zero_padding_2d(m, form$arg, data_format = data_format),
          data_format)
    check(shape, function(m) layer_cropping_2d(m, form$arg, data_format = data_format),
          data_format)
  }
  check(c(4, 6, 3), function(m) layer_reshape(m, c(-1, 4)))
  check(c(4, 6, 3), function(m) layer_reshape(m, c(3, 2, 4, 2)))
  check(c(4, 6, 3), function(m) layer_permute(m, c(3, 1, 2)))
  check(c(5, 3), function(m) layer_permute(m, c(2, 1)))
})

shape_fixture_paths <- list.files(test_path("fixtures"), pattern = "^shape_.*\\.json$",
                                  full.names = TRUE)

shape_layer_of_class <- list(
  ZeroPadding1D = layer_zero_padding_1d, ZeroPadding2D = layer_zero_padding_2d,
  Cropping1D = layer_cropping_1d, Cropping2D = layer_cropping_2d,
  Reshape = layer_reshape, Permute = layer_permute
)

test_that("padding, cropping, reshape and permute match tf-keras", {
  skip_if_not_installed("jsonlite")
  expect_gte(length(shape_fixture_paths), 25)
  seen <- character()
  for (path in shape_fixture_paths) {
    f <- read_fixture(path)
    seen <- c(seen, f$layer)
    model <- do.call(shape_layer_of_class[[f$layer]],
                     c(list(keras_model_sequential(input_shape = dim(f$input_array)[-1])),
                       fixture_arguments(f$args)))
    y <- predict(model, f$input_array)
    expect_equal(dim(y), dim(f$output_array), label = basename(path))
    # Values only move: float32 copies are exact.
    expect_identical(as.vector(y), as.vector(f$output_array), label = basename(path))
  }
  expect_setequal(seen, names(shape_layer_of_class))
})

test_that("shape layers have Keras's names, output shapes and no weights", {
  k_clear_session()
  model <- keras_model_sequential(input_shape = c(6, 8, 2)) %>%
    layer_zero_padding_2d(list(c(1, 0), c(2, 3))) %>%
    layer_cropping_2d(c(1, 2)) %>%
    layer_permute(c(3, 1, 2)) %>%
    layer_reshape(c(-1, 3)) %>%
    layer_zero_padding_1d(2) %>%
    layer_cropping_1d()
  expect_equal(vapply(model$layers, function(l) l$name, ""),
               c("zero_padding2d", "cropping2d", "permute", "reshape", "zero_padding1d",
                 "cropping1d"))
  expect_equal(model$output_shape, list(NULL, 32L, 3L))
  expect_equal(count_params(model), 0)
  expect_snapshot(summary(model))
})

test_that("a model with shape layers trains", {
  set.seed(96)
  x <- random_array(c(48, 12, 2))
  y <- matrix(rowSums(x[, 3:6, 1]), ncol = 1)
  model <- keras_model_sequential(input_shape = c(12, 2)) %>%
    layer_zero_padding_1d(c(1, 2)) %>%
    layer_locally_connected_1d(3, 3) %>%
    layer_cropping_1d(c(1, 0)) %>%
    layer_permute(c(2, 1)) %>%
    layer_reshape(c(-1, 1)) %>%
    layer_flatten() %>%
    layer_dense(1)
  model %>% compile(optimizer = optimizer_adam(0.01), loss = "mse")
  before <- evaluate(model, x, y, verbose = 0)[["loss"]]
  model %>% fit(x, y, epochs = 5, batch_size = 16, verbose = 0)
  expect_lt(evaluate(model, x, y, verbose = 0)[["loss"]], before)
})

test_that("bad shape layer arguments and inputs raise classed errors", {
  expect_error(layer_zero_padding_1d(padding = -1), class = "lcnn_error_argument")
  expect_error(layer_zero_padding_1d(padding = c(1, 2, 3)), class = "lcnn_error_argument")
  expect_error(layer_zero_padding_2d(padding = list(1, 2, 3)), class = "lcnn_error_argument")
  expect_error(layer_cropping_2d(cropping = list(c(1, 2, 3), 1)), class = "lcnn_error_argument")
  expect_error(layer_cropping_1d(cropping = 1.5), class = "lcnn_error_argument")
  expect_error(layer_reshape(target_shape = c(-1, -1)), class = "lcnn_error_argument")
  expect_error(layer_reshape(target_shape = c(0, 2)), class = "lcnn_error_argument")
  expect_error(layer_reshape(), class = "lcnn_error_argument")
  expect_error(layer_permute(dims = c(0, 1)), class = "lcnn_error_argument")
  expect_error(layer_permute(dims = c(1, 1)), class = "lcnn_error_argument")
  expect_error(layer_permute(), class = "lcnn_error_argument")
  expect_error(layer_cropping_1d(array(0, c(1, 2, 3))), class = "lcnn_error_shape")
  expect_error(layer_reshape(array(0, c(1, 2, 3)), c(4, -1)), class = "lcnn_error_shape")
  expect_error(layer_permute(array(0, c(1, 2, 3)), 1:3), class = "lcnn_error_shape")
  k_clear_session()
  expect_snapshot(error = TRUE, {
    layer_zero_padding_1d(padding = c(1, 2, 3))
    layer_zero_padding_2d(padding = list(1, c(2, -1)))
    layer_cropping_1d(cropping = -1)
    layer_cropping_2d(cropping = "all")
    layer_zero_padding_2d(data_format = "nhwc")
    layer_reshape(target_shape = c(-1, 2, -1))
    layer_permute(dims = c(2, 3))
    layer_cropping_1d(array(0, c(1, 2, 3)))
    layer_cropping_2d(array(0, c(1, 4, 5, 1)), cropping = list(c(2, 2), 0))
    layer_zero_padding_2d(array(0, c(1, 4, 5)))
    layer_reshape(array(0, c(1, 4, 6)), c(5, -1))
    layer_reshape(array(0, c(1, 4, 6)), c(5, 5))
    layer_permute(array(0, c(1, 2, 3)), c(3, 1, 2))
  })
})
