siamese_from_fixture <- function() {
  k_clear_session()
  a <- layer_input(shape = c(6, 2), name = "a", dtype = "float64")
  b <- layer_input(shape = c(6, 2), name = "b", dtype = "float64")
  shared <- layer_locally_connected_1d(filters = 3, kernel_size = 2, activation = "tanh",
                                       name = "shared")
  ha <- shared(a)
  hb <- shared(b)
  merged <- lapply(list(layer_add, layer_subtract, layer_multiply, layer_average,
                        layer_maximum, layer_minimum), function(merge) merge(list(ha, hb)))
  along_steps <- layer_concatenate(merged, axis = 1)
  along_channels <- layer_concatenate(list(ha, hb))
  label <- along_steps %>% layer_flatten() %>%
    layer_dense(2, activation = "softmax", name = "label")
  value <- along_channels %>% layer_flatten() %>% layer_dense(1, name = "value")
  keras_model(list(a, b), list(label, value), name = "siamese")
}

test_that("a shared layer, every merge and two outputs match tf-keras, in training too", {
  skip_if_not_installed("jsonlite")
  f <- jsonlite::fromJSON(test_path("fixtures", "functional_siamese.json"),
                          simplifyVector = FALSE)
  model <- siamese_from_fixture()
  xs <- lapply(f$inputs, fixture_array)
  set_weights(model, lapply(f$weights, fixture_array))
  expect_equal(predict(model, xs), lapply(f$outputs, fixture_array), tolerance = 1e-10)

  keras_summary <- gsub("None", "NULL", unlist(f$summary))
  expect_equal(capture.output(summary(model)), c("Model: \"siamese\"", keras_summary[-1]))

  model %>% compile(optimizer = optimizer_sgd(f$learning_rate),
                    loss = list("sparse_categorical_crossentropy", "mse"),
                    loss_weights = unlist(f$loss_weights))
  history <- model %>% fit(xs, lapply(f$targets, fixture_array), batch_size = 4, epochs = 1,
                           shuffle = FALSE, verbose = 0)
  logged <- vapply(history$metrics[names(f$losses)], function(v) v[1], numeric(1))
  expect_equal(logged, unlist(f$losses), tolerance = 1e-10)
  expect_equal(get_weights(model), lapply(f$weights_after, fixture_array), tolerance = 1e-10)
})

test_that("tensors know their shape, and layers called on them are built", {
  k_clear_session()
  x <- layer_input(shape = c(10, 3))
  expect_s3_class(x, "lcnn_tensor")
  expect_equal(x$shape, c(10L, 3L))
  expect_snapshot(print(x))
  dense <- layer_dense(units = 4)
  y <- dense(x)
  expect_true(dense$built)
  expect_equal(y$shape, c(10L, 4L))
  expect_equal((x |> layer_dense(units = 4))$shape, (x %>% layer_dense(units = 4))$shape)
  expect_equal(layer_input(batch_shape = c(8, 5))$batch, 8L)
  expect_equal(layer_input(shape = 2)$node$layer$name, "input_3")
})

test_that("piped and nested calls give identical functional models", {
  build <- function(pipe) {
    set.seed(1)
    k_clear_session()
    x <- layer_input(shape = c(8, 2))
    y <- if (pipe) {
      x %>% layer_locally_connected_1d(4, 3) %>% layer_flatten() %>% layer_dense(1)
    } else {
      layer_dense(layer_flatten(layer_locally_connected_1d(x, 4, 3)), 1)
    }
    keras_model(x, y)
  }
  expect_equal(get_weights(build(TRUE)), get_weights(build(FALSE)))
  model <- build(TRUE)
  expect_s3_class(model, "lcnn_functional")
  expect_equal(vapply(model$layers, function(l) l$type, character(1)),
               c("InputLayer", "LocallyConnected1D", "Flatten", "Dense"))
  expect_equal(model$input_shape, list(NULL, 8L, 2L))
  expect_equal(model$output_shape, list(NULL, 1L))
})

test_that("a functional model predicts what its layers compute in turn", {
  set.seed(2)
  x <- layer_input(shape = c(7, 2))
  lc <- layer_locally_connected_1d(filters = 3, kernel_size = 2, activation = "relu")
  flat <- layer_flatten()
  dense <- layer_dense(units = 2)
  model <- keras_model(x, dense(flat(lc(x))))
  data <- random_array(c(5, 7, 2))
  expect_equal(predict(model, data), dense(flat(lc(data))), tolerance = 1e-6)
})

test_that("a shared layer keeps one set of weights and sums its gradients", {
  set.seed(3)
  a <- layer_input(shape = 4, dtype = "float64")
  b <- layer_input(shape = 4, dtype = "float64")
  shared <- layer_dense(units = 3, activation = "tanh")
  out <- layer_dense(layer_concatenate(list(shared(a), shared(b))), units = 1)
  model <- keras_model(list(a, b), out)
  expect_length(get_weights(model), 4)
  expect_equal(count_params(model), 15 + 7)
  model %>% compile(optimizer = "sgd", loss = "mse")
  xs <- list(random_array(c(6, 4)), random_array(c(6, 4)))
  expect_gradients_match(model, xs, random_array(c(6, 1)))
})

test_that("layers applied twice in a chain and merges have exact gradients", {
  set.seed(4)
  x <- layer_input(shape = c(6, 2), dtype = "float64")
  shared <- layer_locally_connected_1d(filters = 2, kernel_size = 1, activation = "tanh")
  h <- shared(shared(x))
  merged <- list(layer_add(list(h, x)), layer_subtract(list(h, x)), layer_multiply(list(h, x)),
                 layer_average(list(h, x)), layer_maximum(list(h, x)),
                 layer_minimum(list(h, x)))
  y <- layer_concatenate(merged, axis = 1) %>% layer_flatten() %>%
    layer_dense(3, activation = "softmax")
  model <- keras_model(x, y)
  model %>% compile(optimizer = "sgd", loss = "sparse_categorical_crossentropy")
  expect_gradients_match(model, random_array(c(5, 6, 2)), c(0, 1, 2, 1, 0))
})

test_that("several outputs train with their own losses, weights and metrics", {
  set.seed(5)
  x <- layer_input(shape = 3, dtype = "float64")
  h <- layer_dense(x, 4, activation = "relu", name = "hidden")
  class_out <- layer_dense(h, 2, activation = "softmax", name = "class")
  value_out <- layer_dense(h, 1, name = "value")
  model <- keras_model(x, list(class_out, value_out))
  model %>% compile(optimizer = "sgd",
                    loss = list(value = "mse", class = "sparse_categorical_crossentropy"),
                    loss_weights = list(class = 2, value = 0.5),
                    metrics = list(class = "accuracy", value = "mae"))
  xs <- random_array(c(8, 3))
  ys <- list(value = random_array(c(8, 1)), class = rep(0:1, 4))
  expect_gradients_match(model, xs, ys[c("class", "value")])
  scores <- evaluate(model, xs, ys)
  expect_named(scores, c("loss", "class_loss", "value_loss", "class_accuracy", "value_mae"))
  expect_equal(scores$loss, 2 * scores$class_loss + 0.5 * scores$value_loss, tolerance = 1e-10)
  p <- predict(model, xs)
  expect_equal(scores$value_mae, mean(abs(p[[2]] - ys$value)), tolerance = 1e-10)
  history <- model %>% fit(xs, ys, epochs = 2, verbose = 0, validation_split = 0.25)
  expect_named(history$metrics, c("loss", "class_loss", "value_loss", "class_accuracy",
                                  "value_mae", "val_loss", "val_class_loss", "val_value_loss",
                                  "val_class_accuracy", "val_value_mae"))

  model %>% compile(optimizer = "sgd", loss = list("sparse_categorical_crossentropy", "mse"),
                    loss_weights = list(value = 3), metrics = list(class = "accuracy"))
  scores <- evaluate(model, xs, ys)
  expect_named(scores, c("loss", "class_loss", "value_loss", "class_accuracy"))
  expect_equal(scores$loss, scores$class_loss + 3 * scores$value_loss, tolerance = 1e-10)
})

test_that("an output that also feeds another layer trains through its probabilities", {
  set.seed(6)
  x <- layer_input(shape = 3, dtype = "float64")
  probs <- layer_dense(x, 2, activation = "softmax")
  again <- layer_dense(probs, 1)
  model <- keras_model(x, list(probs, again))
  model %>% compile(optimizer = "sgd", loss = list("categorical_crossentropy", "mse"))
  y <- list(diag(2)[c(1, 2, 2, 1), ], random_array(c(4, 1)))
  expect_gradients_match(model, random_array(c(4, 3)), y)
})

test_that("models are layers: in a functional model and in a sequential one", {
  set.seed(7)
  inner <- keras_model_sequential(input_shape = 5) %>% layer_dense(3, activation = "relu")
  x <- layer_input(shape = 5)
  outer <- keras_model(x, layer_add(list(inner(x), inner(x))))
  data <- random_array(c(4, 5))
  expect_equal(predict(outer, data), 2 * predict(inner, data), tolerance = 1e-6)
  expect_length(get_weights(outer), 2)

  unbuilt <- keras_model_sequential() %>% layer_dense(2)
  wrapper <- keras_model_sequential(input_shape = 5) %>% layer_dense(4)
  wrapper$add(unbuilt)
  expect_true(unbuilt$built)
  expect_equal(wrapper$output_shape, list(NULL, 2L))
  expect_equal(predict(wrapper, data), predict(unbuilt, wrapper$layers[[1]](data)),
               tolerance = 1e-6)
  wrapper$add(layer_dense(units = 1))
  wrapper %>% compile(optimizer = "sgd", loss = "mse")
  before <- get_weights(unbuilt)
  wrapper %>% fit(data, rowSums(data), epochs = 1, verbose = 0)
  expect_false(isTRUE(all.equal(before, get_weights(unbuilt))))
  expect_snapshot(summary(wrapper))
})

test_that("functional models fit and predict with lists, by position or by name", {
  set.seed(8)
  a <- layer_input(shape = 2, name = "a")
  b <- layer_input(shape = 3, name = "b")
  out <- layer_dense(layer_concatenate(list(a, b)), 1, name = "out")
  model <- keras_model(list(a, b), out)
  xa <- random_array(c(10, 2))
  xb <- random_array(c(10, 3))
  expect_equal(predict(model, list(b = xb, a = xa)), predict(model, list(xa, xb)))
  model %>% compile(optimizer = "adam", loss = "mse")
  history <- model %>% fit(list(a = xa, b = xb), rowSums(xa), epochs = 3, verbose = 0)
  expect_length(history$metrics$loss, 3)
})

test_that("a functional model survives saveRDS() with its weights and sharing", {
  set.seed(9)
  x <- layer_input(shape = 3)
  shared <- layer_dense(units = 3)
  model <- keras_model(x, shared(shared(x)))
  data <- random_array(c(4, 3))
  path <- tempfile(fileext = ".rds")
  saveRDS(model, path)
  restored <- readRDS(path)
  expect_equal(predict(restored, data), predict(model, data))
  expect_length(get_weights(restored), 2)
})

test_that("graph mistakes raise classed errors", {
  k_clear_session()
  a <- layer_input(shape = 3, name = "a")
  other <- layer_input(shape = 3, name = "other")
  from_other <- layer_dense(other, 2)
  expect_snapshot(error = TRUE, keras_model(a, from_other))
  expect_error(keras_model(a, from_other), class = "lcnn_error_graph")
  expect_snapshot(error = TRUE, keras_model(from_other, from_other))
  expect_snapshot(error = TRUE, keras_model(list(a, a), layer_dense(a, 1)))
  expect_snapshot(error = TRUE, keras_model(a, "not a tensor"))
  four <- layer_input(shape = 4)
  expect_snapshot(error = TRUE, layer_add(list(a, four)))
  expect_error(layer_add(list(a, four)), class = "lcnn_error_shape")
  expect_snapshot(error = TRUE, layer_concatenate(list(a, layer_input(shape = c(3, 2)))))
  expect_snapshot(error = TRUE, layer_add(list(a)))
  expect_snapshot(error = TRUE, layer_subtract(list(a, a, a)))
  expect_snapshot(error = TRUE, layer_dense(list(a, a), 2))

  model <- keras_model_sequential(input_shape = 3) %>% layer_dense(3)
  outer <- keras_model_sequential() %>% layer_dense(3)
  outer$add(model)
  expect_snapshot(error = TRUE, model$add(outer))
  expect_error(model$add(outer), class = "lcnn_error_graph")
  expect_snapshot(error = TRUE, model %>% model)
  two_out <- keras_model(a, list(layer_dense(a, 1), layer_dense(a, 2)))
  expect_snapshot(error = TRUE, keras_model_sequential() %>% two_out)
  expect_snapshot(error = TRUE, two_out(list(a, a)))
  expect_snapshot(error = TRUE, model(four))
  expect_snapshot(error = TRUE, layer_dense(units = 2)(a, a))
})

test_that("bad data for several inputs and outputs raise classed errors", {
  k_clear_session()
  a <- layer_input(shape = 2, name = "a")
  b <- layer_input(shape = 3, name = "b")
  model <- keras_model(list(a, b), list(layer_dense(a, 1, name = "p"), layer_dense(b, 1, name = "q")))
  model %>% compile(optimizer = "sgd", loss = "mse")
  xa <- matrix(0, 4, 2)
  xb <- matrix(0, 4, 3)
  expect_snapshot(error = TRUE, predict(model, xa))
  expect_snapshot(error = TRUE, predict(model, list(a = xa, c = xb)))
  expect_snapshot(error = TRUE, predict(model, list(xa, matrix(0, 5, 3))))
  expect_snapshot(error = TRUE, fit(model, list(xa, xb), rep(0, 4), verbose = 0))
  expect_snapshot(error = TRUE, fit(model, list(xa, xb), list(rep(0, 4), rep(0, 3)),
                                    verbose = 0))
  expect_snapshot(error = TRUE, fit(model, list(xa, xb), list(rep(0, 4), rep(0, 4)),
                                    class_weight = list("0" = 1), verbose = 0))
  expect_snapshot(error = TRUE, compile(model, loss = list("mse", "mse", "mse")))
  expect_snapshot(error = TRUE, compile(model, loss = list(p = "mse", r = "mse")))
  expect_snapshot(error = TRUE, compile(model, loss = "mse", loss_weights = c(1, NA)))
})

test_that("layers sharing a name are refused by keras_model(), inputs included", {
  k_clear_session()
  a <- layer_input(shape = 2, name = "x")
  b <- layer_input(shape = 2, name = "x")
  expect_snapshot(error = TRUE, keras_model(list(a, b), layer_subtract(list(a, b))))
  i <- layer_input(shape = 3)
  y1 <- layer_dense(i, 1, name = "y")
  y2 <- layer_dense(i, 1, name = "y")
  expect_error(keras_model(i, list(y1, y2)), class = "lcnn_error_argument")
  x3 <- layer_input(shape = 3, name = "x")
  expect_error(keras_model(x3, layer_dense(x3, 2, name = "x")), class = "lcnn_error_argument")
  # A failed keras_model() takes no automatic name.
  expect_equal(keras_model(i, y1)$name, "model")
  # A shared layer is one layer; a model inside counts with its own name.
  shared <- layer_dense(units = 2, name = "shared")
  p <- layer_input(shape = 3, name = "p")
  q <- layer_input(shape = 3, name = "q")
  model <- keras_model(list(p, q), layer_add(list(shared(p), shared(q)), name = "sum"))
  expect_equal(vapply(model$layers, function(l) l$name, character(1)),
               c("p", "q", "shared", "sum"))
  r <- layer_input(shape = 3, name = "r")
  inner <- keras_model(r, layer_dense(r, 2, name = "p"), name = "inner")
  outer <- keras_model(p, layer_dense(inner(p), 1, name = "out"))
  expect_equal(vapply(outer$layers, function(l) l$name, character(1)), c("p", "inner", "out"))
  named_p <- keras_model(r, layer_dense(r, 2), name = "p")
  expect_error(keras_model(p, named_p(p)), class = "lcnn_error_argument")
})

test_that("a list of inputs with a stray element names it", {
  t <- layer_input(shape = 3)
  expect_snapshot(error = TRUE, layer_add(list(t, 1)))
  expect_snapshot(error = TRUE, keras_model(t, list(t, "x")))
  expect_error(layer_add(list(matrix(1, 2, 3), "a")), class = "lcnn_error_argument")
  expect_error(layer_add(list(matrix(1, 2, 3), t)), "inputs[[1]]", fixed = TRUE)
  # A tensor where an array belongs is described, not deparsed.
  model <- keras_model(t, layer_dense(t, 1))
  expect_error(predict(model, t), "Got a symbolic tensor of shape (NULL, 3)", fixed = TRUE,
               class = "lcnn_error_argument")
})

test_that("layer_input() errors name shape and batch_shape", {
  expect_snapshot(error = TRUE, layer_input(shape = "a"))
  expect_snapshot(error = TRUE, layer_input(batch_shape = list(0, 3)))
  expect_error(layer_input(batch_shape = c(NA, 0)), "batch_shape[-1]", fixed = TRUE,
               class = "lcnn_error_argument")
  expect_error(layer_input(shape = 2, batch_shape = c(NA, 2)), class = "lcnn_error_argument")
  expect_error(layer_input(), "is required", class = "lcnn_error_argument")
  expect_equal(layer_input(batch_shape = list(NULL, 4, 2))$shape, c(4L, 2L))
  expect_null(layer_input(batch_shape = c(NA, 4))$batch)
})
