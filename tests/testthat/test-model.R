test_that("get_layer() finds layers by name or position", {
  k_clear_session()
  x <- layer_input(shape = 3, name = "features")
  model <- keras_model(x, layer_dense(x, 2, name = "out"))
  expect_identical(get_layer(model, "out"), model$layers[[2]])
  expect_identical(model$get_layer(index = 1), model$layers[[1]])
  expect_snapshot(error = TRUE, get_layer(model, "missing"))
  expect_snapshot(error = TRUE, get_layer(model, index = 3))
  expect_error(get_layer(x, "out"), class = "lcnn_error_argument")
  # Keras: "Provide only a layer name or a layer index".
  expect_snapshot(error = TRUE, get_layer(model, name = "out", index = 1))
})

test_that("functional models expose their inputs, outputs and shapes as keras does", {
  a <- layer_input(shape = c(4, 2))
  b <- layer_input(shape = 3)
  out_a <- layer_flatten(a)
  model <- keras_model(list(a, b), list(out_a, layer_dense(b, 2)))
  expect_identical(model$inputs, list(a, b))
  expect_identical(model$outputs[[1]], out_a)
  expect_equal(model$input_shape, list(list(NULL, 4L, 2L), list(NULL, 3L)))
  expect_equal(model$output_shape, list(list(NULL, 8L), list(NULL, 2L)))
  expect_true(model$built)
  expect_setequal(.DollarNames(model, ""), lcnn:::model_fields)
  expect_snapshot(error = TRUE, model$add(layer_dense(units = 1)))
})

test_that("setting trainable on a model sets it on all its layers", {
  x <- layer_input(shape = 3)
  model <- keras_model(x, x %>% layer_dense(2) %>% layer_dense(1))
  model$trainable <- FALSE
  expect_false(any(vapply(model$layers[-1], function(l) l$trainable, logical(1))))
  expect_snapshot(summary(model))
  expect_error(model$trainable <- "no", class = "lcnn_error_argument")
})

test_that("calling a layer or a model on an array runs it eagerly", {
  set.seed(1)
  model <- keras_model_sequential(input_shape = 4) %>% layer_dense(2)
  data <- random_array(c(3, 4))
  expect_equal(model(data), predict(model, data))
  dense <- layer_dense(units = 2, dtype = "float64")
  out <- dense(data)
  w <- get_weights(dense)
  expect_equal(out, data %*% w[[1]] + matrix(w[[2]], 3, 2, byrow = TRUE))
})
