test_that("layer_*() composes with a missing object, a model and pipes", {
  layer <- layer_locally_connected_2d(filters = 4, kernel_size = 3)
  expect_s3_class(layer, "lcnn_layer")
  expect_false(layer$built)

  model <- keras_model_sequential(input_shape = c(8, 8, 2))
  returned <- withVisible(layer_locally_connected_2d(model, filters = 4, kernel_size = 3))
  expect_false(returned$visible)
  expect_identical(returned$value, model)
  expect_length(model$layers, 1)

  # In place: no reassignment needed, and |> builds the same model.
  model %>% layer_locally_connected_2d(filters = 2, kernel_size = 2)
  expect_length(model$layers, 2)
  native <- keras_model_sequential(input_shape = c(8, 8, 2)) |>
    layer_locally_connected_2d(filters = 4, kernel_size = 3) |>
    layer_locally_connected_2d(filters = 2, kernel_size = 2)
  expect_equal(native$output_shape, model$output_shape)
  expect_equal(count_params(native), count_params(model))
})

test_that("an input shape on the first layer builds the model", {
  model <- keras_model_sequential() %>%
    layer_locally_connected_1d(filters = 3, kernel_size = 2, input_shape = c(10, 4)) %>%
    layer_locally_connected_1d(filters = 2, kernel_size = 3)
  expect_true(model$built)
  expect_equal(model$input_shape, list(NULL, 10L, 4L))
  expect_equal(model$output_shape, list(NULL, 7L, 2L))
  expect_equal(model$layers[[2]]$input_shape, list(NULL, 9L, 3L))
})

test_that("layers can be given as a list", {
  model <- keras_model_sequential(list(
    layer_locally_connected_1d(filters = 3, kernel_size = 2, input_shape = c(10, 4)),
    layer_locally_connected_1d(filters = 2, kernel_size = 3)
  ), name = "stack")
  expect_equal(model$name, "stack")
  expect_equal(model$output_shape, list(NULL, 7L, 2L))
})

test_that("a model without an input shape is built by predict()", {
  model <- keras_model_sequential() %>%
    layer_locally_connected_1d(filters = 3, kernel_size = 2) %>%
    layer_locally_connected_1d(filters = 2, kernel_size = 3)
  expect_false(model$built)
  expect_null(model$output_shape)
  expect_error(summary(model), class = "lcnn_error_state")
  expect_error(get_weights(model), class = "lcnn_error_state")
  y <- predict(model, array(1, c(2, 6, 1)))
  expect_equal(dim(y), c(2L, 3L, 2L))
  expect_true(model$built)
  expect_error(predict(model, array(1, c(2, 7, 1))), class = "lcnn_error_shape")
})

test_that("a failed build of an unbuilt model changes nothing", {
  model <- keras_model_sequential() %>%
    layer_locally_connected_1d(filters = 3, kernel_size = 2) %>%
    layer_locally_connected_1d(filters = 2, kernel_size = 5)
  expect_error(predict(model, array(1, c(2, 4, 1))), class = "lcnn_error_shape")
  expect_false(model$layers[[1]]$built)
  expect_false(model$built)
})

test_that("a failed add changes nothing", {
  model <- keras_model_sequential(input_shape = c(5, 5, 1)) %>%
    layer_locally_connected_2d(2, 3)
  before <- get_weights(model)
  expect_error(model %>% layer_locally_connected_2d(2, 4), class = "lcnn_error_shape")
  expect_length(model$layers, 1)
  expect_identical(get_weights(model), before)
  expect_error(model %>% layer_locally_connected_1d(2, 1), class = "lcnn_error_shape")
  expect_length(model$layers, 1)
})

test_that("layer objects are shared by reference", {
  layer <- layer_locally_connected_2d(filters = 2, kernel_size = 3)
  model <- keras_model_sequential(input_shape = c(5, 5, 1)) %>%
    layer_locally_connected_2d(filters = 1, kernel_size = 1)
  model$add(layer)
  expect_true(layer$built)
  w <- get_weights(layer)
  w[[1]][] <- 0
  set_weights(model$layers[[2]], w)
  expect_true(all(get_weights(layer)[[1]] == 0))
  expect_error(keras_model_sequential(list(layer, layer)), class = "lcnn_error_argument")
})

test_that("dtypes must agree within a model", {
  model <- keras_model_sequential(input_shape = c(6, 1), dtype = "float64") %>%
    layer_locally_connected_1d(1, 2)
  expect_equal(model$dtype, "float64")
  expect_equal(model$layers[[1]]$dtype, "float64")
  expect_error(model %>% layer_locally_connected_1d(1, 2, dtype = "float32"),
               class = "lcnn_error_argument")
  expect_equal(keras_model_sequential()$dtype, "float32")
})

test_that("model and layer fields and printing", {
  k_clear_session()
  model <- keras_model_sequential(input_shape = c(10, 32)) %>%
    layer_locally_connected_1d(filters = 64, kernel_size = 3) %>%
    layer_locally_connected_1d(filters = 32, kernel_size = 3)
  expect_setequal(.DollarNames(model, ""), lcnn:::model_fields)
  expect_equal(model$count_params(), 86720)
  expect_length(model$get_weights(), 4)
  layer <- model$layers[[1]]
  expect_equal(layer$type, "LocallyConnected1D")
  expect_equal(layer$count_params(), 8 * 96 * 64 + 8 * 64)
  layer$trainable <- FALSE
  expect_false(layer$trainable)
  expect_error(layer$trainable <- "no", class = "lcnn_error_argument")
  expect_snapshot({
    model
    layer
    layer_locally_connected_2d(filters = 2, kernel_size = 3, name = "free")
    keras_model_sequential(name = "empty")
  })
})

test_that("bad model arguments raise classed errors", {
  expect_error(keras_model_sequential(input_shape = c(0, 3)), class = "lcnn_error_argument")
  expect_error(keras_model_sequential(input_shape = c(NA, 3)), class = "lcnn_error_argument")
  expect_error(keras_model_sequential(name = 3), class = "lcnn_error_argument")
  expect_error(keras_model_sequential(layers = list(1)), class = "lcnn_error_argument")
  expect_error(layer_locally_connected_2d("model", 2, 3), class = "lcnn_error_argument")
  expect_snapshot(error = TRUE, {
    keras_model_sequential(input_shape = c(0, 3))
    layer_locally_connected_2d(list(1), 2, 3)
  })
})

test_that("a layer whose name the model already has is refused, and the model kept", {
  model <- keras_model_sequential(input_shape = 3, name = "net") %>%
    layer_dense(2, name = "d")
  expect_snapshot(error = TRUE, model %>% layer_dense(4, name = "d"))
  expect_error(model$add(layer_flatten(name = "d")), class = "lcnn_error_argument")
  expect_length(model$layers, 1)
  expect_equal(model$output_shape, list(NULL, 2L))
  # A model inside counts as one layer with its own name.
  inner <- keras_model_sequential(input_shape = 2, name = "d") %>% layer_dense(1, name = "e")
  expect_error(model %>% inner, class = "lcnn_error_argument")
  inner2 <- keras_model_sequential(input_shape = 2, name = "inner") %>%
    layer_dense(1, name = "d")
  model %>% inner2
  expect_equal(vapply(model$layers, function(l) l$name, character(1)), c("d", "inner"))
  expect_error(keras_model_sequential(list(layer_dense(units = 2, name = "x", input_shape = 1),
                                           layer_dense(units = 2, name = "x"))),
               class = "lcnn_error_argument")
})

test_that("automatic names never repeat within a model", {
  k_clear_session()
  model <- keras_model_sequential(input_shape = c(6, 2))
  for (i in 1:3) model %>% layer_locally_connected_1d(2, 1) %>% layer_activation("relu")
  model %>% layer_flatten() %>% layer_dense(2) %>% layer_dense(1) %>% layer_dropout(0.1)
  names <- vapply(model$layers, function(l) l$name, character(1))
  expect_equal(names[1:4], c("locally_connected1d", "activation", "locally_connected1d_1",
                             "activation_1"))
  expect_false(anyDuplicated(names) > 0)
})
