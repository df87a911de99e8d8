# Each activation through a layer whose local product is the identity
# (kernel 1, one channel, weight 1, no bias), against R's formulas.

identity_layer <- function(activation, data_format = "channels_last", length = 7) {
  shape <- if (data_format == "channels_last") c(length, 1) else c(1, length)
  keras_model_sequential(input_shape = shape) %>%
    layer_locally_connected_1d(1, 1, activation = activation, use_bias = FALSE,
                               kernel_initializer = "ones", data_format = data_format,
                               dtype = "float64")
}

test_that("every elementwise activation matches its Keras 2 definition", {
  x <- array(c(-30, -2.5, -1, -0.3, 0, 0.4, 1, 2, 3.7, 30), c(1, 10, 1))
  for (name in setdiff(names(ref_activations), "exponential")) {
    y <- predict(identity_layer(name, length = 10), x)
    expect_equal(as.vector(y), ref_activations[[name]](as.vector(x)), tolerance = 1e-12,
                 label = name)
  }
  small <- array(c(-3, -1, 0, 1, 3), c(1, 5, 1))
  expect_equal(as.vector(predict(identity_layer("exponential", length = 5), small)),
               exp(c(-3, -1, 0, 1, 3)), tolerance = 1e-12)
})

test_that("hard_sigmoid is Keras 2's 0.2 x + 0.5 and silu is swish", {
  x <- array(c(-3, -2.5, 0, 1, 2.5, 3), c(1, 6, 1))
  expect_equal(as.vector(predict(identity_layer("hard_sigmoid", length = 6), x)),
               c(0, 0, 0.5, 0.7, 1, 1))
  expect_equal(predict(identity_layer("silu", length = 6), x),
               predict(identity_layer("swish", length = 6), x))
  expect_equal(identity_layer("silu")$layers[[1]]$config$activation, "swish")
  expect_equal(identity_layer("ReLU")$layers[[1]]$config$activation, "relu")
})

test_that("softplus and sigmoid do not overflow", {
  x <- array(c(-1000, 1000), c(1, 2, 1))
  expect_equal(as.vector(predict(identity_layer("softplus", length = 2), x)), c(0, 1000))
  expect_equal(as.vector(predict(identity_layer("sigmoid", length = 2), x)), c(0, 1))
})

test_that("softmax runs over the last axis, which is spatial with channels_first", {
  set.seed(11)
  x <- random_array(c(2, 5, 3))
  model <- keras_model_sequential(input_shape = c(5, 3)) %>%
    layer_locally_connected_1d(4, 2, activation = "softmax", dtype = "float64")
  y <- predict(model, x)
  expect_equal(apply(y, c(1, 2), sum), matrix(1, 2, 4))
  w <- get_weights(model)
  expect_close(y, ref_lc_impl1(x, w[[1]], w[[2]], 2, 1, "valid", "channels_last", "softmax"))

  xf <- random_array(c(2, 3, 5))
  first <- keras_model_sequential(input_shape = c(3, 5)) %>%
    layer_locally_connected_1d(4, 2, activation = "softmax", data_format = "channels_first",
                               bias_initializer = initializer_random_normal(), dtype = "float64")
  yf <- predict(first, xf)
  expect_equal(apply(yf, c(1, 2), sum), matrix(1, 2, 4))
  wf <- get_weights(first)
  expect_close(yf, ref_lc_impl1(xf, wf[[1]], wf[[2]], 2, 1, "valid", "channels_first",
                                "softmax"))
})
