# Forward pass against the naive references of helper-reference.R, for every
# implementation's weight layout.

# Builds a layer for `shape`, loads Keras-layout weights, returns output.
lc_forward <- function(rank, x, weights, ...) {
  make <- if (rank == 1) layer_locally_connected_1d else layer_locally_connected_2d
  model <- keras_model_sequential(input_shape = dim(x)[-1]) %>% make(...)
  set_weights(model, weights)
  predict(model, x)
}

random_weights <- function(model) lapply(get_weights(model), function(w) {
  array(runif(length(w), -1, 1), if (is.null(dim(w))) length(w) else dim(w))
})

grid_2d <- expand.grid(
  implementation = 1:3, data_format = c("channels_last", "channels_first"),
  padding = c("valid", "same"), case = 1:4, stringsAsFactors = FALSE
)
cases_2d <- list(
  list(shape = c(6, 5), kernel = c(3, 2), strides = c(1, 1), channels = 2, filters = 3),
  list(shape = c(7, 6), kernel = c(2, 3), strides = c(2, 3), channels = 1, filters = 1),
  list(shape = c(5, 7), kernel = c(1, 4), strides = c(3, 2), channels = 3, filters = 2),
  list(shape = c(4, 4), kernel = c(4, 2), strides = c(2, 1), channels = 2, filters = 4)
)

test_that("2D outputs match the reference for every layout, padding and data format", {
  set.seed(1)
  for (row in seq_len(nrow(grid_2d))) {
    cfg <- grid_2d[row, ]
    case <- cases_2d[[cfg$case]]
    sample <- if (cfg$data_format == "channels_last") c(case$shape, case$channels) else
      c(case$channels, case$shape)
    x <- random_array(c(3, sample))
    args <- list(filters = case$filters, kernel_size = case$kernel, strides = case$strides,
                 padding = cfg$padding, data_format = cfg$data_format,
                 implementation = cfg$implementation, dtype = "float64")
    model <- do.call(layer_locally_connected_2d,
                     c(list(keras_model_sequential(input_shape = sample)), args))
    w <- random_weights(model)
    set_weights(model, w)
    expected <- ref_lc(cfg$implementation, x, w[[1]], w[[2]], case$kernel, case$strides,
                       cfg$padding, cfg$data_format, filters = case$filters)
    expect_close(predict(model, x), expected)
  }
})

grid_1d <- expand.grid(
  implementation = 1:3, data_format = c("channels_last", "channels_first"),
  padding = c("valid", "same", "causal"), kernel = 1:4, strides = 1:3,
  stringsAsFactors = FALSE
)

test_that("1D outputs match the reference, including causal padding", {
  set.seed(2)
  for (row in seq_len(nrow(grid_1d))) {
    cfg <- grid_1d[row, ]
    channels <- 1 + row %% 3
    filters <- 1 + row %% 2
    sample <- if (cfg$data_format == "channels_last") c(9, channels) else c(channels, 9)
    x <- random_array(c(2, sample))
    model <- keras_model_sequential(input_shape = sample) %>%
      layer_locally_connected_1d(filters = filters, kernel_size = cfg$kernel,
                                 strides = cfg$strides, padding = cfg$padding,
                                 data_format = cfg$data_format,
                                 implementation = cfg$implementation, dtype = "float64")
    w <- random_weights(model)
    set_weights(model, w)
    expected <- ref_lc(cfg$implementation, x, w[[1]], w[[2]], cfg$kernel, cfg$strides,
                       cfg$padding, cfg$data_format, filters = filters)
    expect_close(predict(model, x), expected)
  }
})

test_that("junk in the unconnected entries of implementation 2 is ignored", {
  set.seed(3)
  x <- random_array(c(2, 6, 5, 2))
  model <- keras_model_sequential(input_shape = c(6, 5, 2)) %>%
    layer_locally_connected_2d(3, c(3, 2), strides = c(2, 1), padding = "same",
                               implementation = 2, dtype = "float64")
  w <- random_weights(model)
  set_weights(model, w)
  clean <- predict(model, x)
  g <- ref_geometry(c(6, 5, 2), c(3, 2), c(2, 1), "same", "channels_last")
  idx <- arrayInd(seq_along(w[[1]]), dim(w[[1]])) - 1
  unconnected <- !ref_connected(g, idx[, 4], idx[, 5], idx[, 1], idx[, 2])
  expect_true(any(unconnected))
  junk <- w
  junk[[1]][unconnected] <- 1e6
  set_weights(model, junk)
  expect_close(predict(model, x), clean)
  # They read back as zero, the connected ones as set.
  back <- get_weights(model)[[1]]
  expect_true(all(back[unconnected] == 0))
  expect_equal(back[!unconnected], w[[1]][!unconnected])
})

test_that("implementation 1 with same padding ignores taps outside the input", {
  set.seed(4)
  x <- random_array(c(2, 5, 1))
  model <- keras_model_sequential(input_shape = c(5, 1)) %>%
    layer_locally_connected_1d(2, 3, padding = "same", dtype = "float64")
  w <- random_weights(model)
  set_weights(model, w)
  y <- predict(model, x)
  # Position 0's first tap (input index -1) is outside: changing it changes nothing.
  w[[1]][1, 1, ] <- 1e6
  set_weights(model, w)
  expect_close(predict(model, x), y)
  expect_equal(get_weights(model)[[1]][1, 1, ], c(0, 0))
})

test_that("the three implementations give identical outputs for the same weights", {
  set.seed(5)
  x <- random_array(c(4, 3, 7, 6))
  models <- lapply(1:3, function(i) {
    keras_model_sequential(input_shape = c(3, 7, 6)) %>%
      layer_locally_connected_2d(4, c(3, 2), strides = c(2, 2), padding = "same",
                                 data_format = "channels_first", implementation = i,
                                 dtype = "float64")
  })
  w1 <- random_weights(models[[1]])
  set_weights(models[[1]], w1)
  # The same weights in layouts 2 and 3, read through the engine's maps.
  layer <- models[[1]]$layers[[1]]
  to_layout <- function(i) lcnn:::.lc_kernel_to_keras(layer$state$geometry, i, layer$weights$kernel)
  w2 <- list(to_layout(2), w1[[2]])
  w3 <- list(to_layout(3), w1[[2]])
  set_weights(models[[2]], w2)
  set_weights(models[[3]], w3)
  y <- lapply(models, predict, x = x)
  expect_close(y[[2]], y[[1]])
  expect_close(y[[3]], y[[1]])
  expect_close(y[[1]], ref_lc_impl2(x, w2[[1]], w2[[2]], c(3, 2), c(2, 2), "same",
                                    "channels_first"))
})

test_that("float32 layers match the float64 reference to float precision", {
  set.seed(6)
  x <- random_array(c(3, 8, 8, 4))
  model <- keras_model_sequential(input_shape = c(8, 8, 4)) %>%
    layer_locally_connected_2d(5, 3, activation = "tanh")
  w <- random_weights(model)
  set_weights(model, w)
  # Weights are held at float32 precision, as Keras holds them.
  w32 <- get_weights(model)
  expect_equal(w32[[1]], w[[1]], tolerance = 1e-6)
  expect_false(identical(w32[[1]], w[[1]]))
  expected <- ref_lc_impl1(x, w32[[1]], w32[[2]], c(3, 3), c(1, 1), "valid",
                           "channels_last", "tanh")
  expect_close(predict(model, x), expected, tolerance = 1e-5)
})

# The engine computes small per-position products (filters x kernel x
# channels, e.g. one channel, one filter) with direct loops and larger ones
# with a GEMM per position: every mode with a shape of each kind. Batch 37
# fills whole blocks of SIMD lanes and leaves a remainder.
kernel_modes <- expand.grid(
  rank = 1:2, padding = c("valid", "same", "causal"),
  data_format = c("channels_last", "channels_first"), strides = 1:2, use_bias = c(TRUE, FALSE),
  stringsAsFactors = FALSE
)
kernel_modes <- kernel_modes[kernel_modes$rank == 1 | kernel_modes$padding != "causal", ]
kernel_shapes <- list(direct = list(channels = 1, filters = 1, kernel = 3),
                      gemm = list(channels = 3, filters = 8, kernel = 3))


test_that("the direct kernels and the GEMMs match the reference in every mode", {
  set.seed(8)
  for (row in seq_len(nrow(kernel_modes))) {
    mode <- kernel_modes[row, ]
    for (kind in names(kernel_shapes)) {
      shape <- kernel_shapes[[kind]]
      spatial <- if (mode$rank == 1) 11 else c(7, 6)
      sample <- if (mode$data_format == "channels_last") c(spatial, shape$channels) else
        c(shape$channels, spatial)
      make <- if (mode$rank == 1) layer_locally_connected_1d else layer_locally_connected_2d
      model <- keras_model_sequential(input_shape = sample, dtype = "float64") %>%
        make(shape$filters, shape$kernel, strides = mode$strides, padding = mode$padding,
             data_format = mode$data_format, use_bias = mode$use_bias)
      expect_identical(lcnn:::.lc_direct_kernels(model$layers[[1]]$state$geometry),
                       kind == "direct")
      w <- random_weights(model)
      set_weights(model, w)
      x <- random_array(c(37, sample))
      expected <- ref_lc_impl1(x, w[[1]], if (mode$use_bias) w[[2]],
                               rep(shape$kernel, mode$rank), rep(mode$strides, mode$rank),
                               mode$padding, mode$data_format)
      expect_close(predict(model, x, batch_size = 37), expected)
    }
  }
})

test_that("the direct kernels give the same outputs and gradients for any thread count", {
  set.seed(9)
  model <- keras_model_sequential(input_shape = c(3000, 1)) %>%
    layer_locally_connected_1d(1, 5, activation = "tanh") %>%
    layer_locally_connected_1d(1, 3, strides = 2, padding = "same") %>%
    layer_flatten() %>%
    layer_dense(1)
  model %>% compile(optimizer = "sgd", loss = "mse")
  x <- random_array(c(37, 3000, 1))
  y <- random_array(c(37, 1))
  expect_true(all(vapply(model$layers[1:2], function(l) {
    lcnn:::.lc_direct_kernels(l$state$geometry)
  }, logical(1))))
  t <- trainer_for(model, x, y)
  d <- t$data
  gradients <- function(threads) {
    lcnn:::.trainer_gradients(t$trainer, d$x, d$y, d$weights, d$n, c(1, 2), threads)
  }
  one <- gradients(1L)
  predicted <- withr::with_options(list(lcnn.num_threads = 1), predict(model, x))
  for (threads in 2:3) {
    expect_identical(gradients(threads), one)
    expect_identical(withr::with_options(list(lcnn.num_threads = threads), predict(model, x)),
                     predicted)
  }
})

test_that("the product kernels give the same outputs and gradients for any thread count", {
  set.seed(10)
  # The second layer has 16 tiles of 3 x 3 positions in its backward pass,
  # the third too few positions (12) for tiles, so it takes them one by
  # one, with few filters and wide patches; both pass an input gradient
  # back, and 37 samples leave rows outside whole vectors.
  model <- keras_model_sequential(input_shape = c(13, 12, 3)) %>%
    layer_locally_connected_2d(8, 2, activation = "tanh") %>%
    layer_locally_connected_2d(64, 3, padding = "same", activation = "relu") %>%
    layer_locally_connected_2d(5, 3) %>%
    layer_flatten() %>%
    layer_dense(1)
  model %>% compile(optimizer = "sgd", loss = "mse")
  x <- random_array(c(37, 13, 12, 3))
  y <- random_array(c(37, 1))
  expect_false(any(vapply(model$layers[1:3], function(l) {
    lcnn:::.lc_direct_kernels(l$state$geometry)
  }, logical(1))))
  t <- trainer_for(model, x, y)
  d <- t$data
  gradients <- function(threads) {
    lcnn:::.trainer_gradients(t$trainer, d$x, d$y, d$weights, d$n, c(1, 2), threads)
  }
  one <- gradients(1L)
  predicted <- withr::with_options(list(lcnn.num_threads = 1), predict(model, x))
  for (threads in 2:3) {
    expect_identical(gradients(threads), one)
    expect_identical(withr::with_options(list(lcnn.num_threads = threads), predict(model, x)),
                     predicted)
  }
})

test_that("output shapes and parameter counts follow Keras (the seeds' examples)", {
  model <- keras_model_sequential(input_shape = c(32, 32, 3)) %>%
    layer_locally_connected_2d(filters = 64, kernel_size = c(3, 3))
  expect_equal(model$output_shape, list(NULL, 30L, 30L, 64L))
  expect_equal(count_params(model), 1612800)
  model %>% layer_locally_connected_2d(filters = 32, kernel_size = c(3, 3))
  expect_equal(model$output_shape, list(NULL, 28L, 28L, 32L))

  m1 <- keras_model_sequential(input_shape = c(10, 32)) %>%
    layer_locally_connected_1d(filters = 64, kernel_size = 3)
  expect_equal(m1$output_shape, list(NULL, 8L, 64L))
  m1 %>% layer_locally_connected_1d(filters = 32, kernel_size = 3)
  expect_equal(m1$output_shape, list(NULL, 6L, 32L))
  expect_equal(count_params(m1), 8 * 3 * 32 * 64 + 8 * 64 + 6 * 3 * 64 * 32 + 6 * 32)
})

test_that("weight shapes of each implementation follow section 3", {
  shapes <- function(..., input_shape = c(6, 5, 2)) {
    m <- keras_model_sequential(input_shape = input_shape) %>%
      layer_locally_connected_2d(3, c(3, 2), strides = c(2, 1), ...)
    lapply(get_weights(m), function(w) if (is.null(dim(w))) length(w) else dim(w))
  }
  expect_equal(shapes(), list(c(8L, 12L, 3L), c(2L, 4L, 3L)))
  expect_equal(shapes(implementation = 2), list(c(6L, 5L, 2L, 2L, 4L, 3L), c(2L, 4L, 3L)))
  expect_equal(shapes(implementation = 3), list(8L * 6L * 2L * 3L, c(2L, 4L, 3L)))
  # Same padding: output 3 x 5; impl 3 counts only the connected taps.
  # Rows: n=6, k=3, s=2 -> windows start at -1, 1, 3: 2 + 3 + 3 = 8 taps.
  # Cols: n=5, k=2, s=1 -> windows start at -1..3: 1 + 2 + 2 + 2 + 2 = 9 taps.
  expect_equal(shapes(padding = "same", implementation = 3), list(8L * 9L * 2L * 3L, c(3L, 5L, 3L)))
  expect_equal(shapes(padding = "same", implementation = 1), list(c(15L, 12L, 3L), c(3L, 5L, 3L)))
  expect_equal(shapes(data_format = "channels_first", implementation = 2,
                      input_shape = c(2, 6, 5)),
               list(c(2L, 6L, 5L, 3L, 2L, 4L), c(2L, 4L, 3L)))
  expect_equal(shapes(use_bias = FALSE), list(c(8L, 12L, 3L)))
})

test_that("padding is case-insensitive and same/causal lengths are ceiling(n / s)", {
  m <- keras_model_sequential(input_shape = c(7, 2)) %>%
    layer_locally_connected_1d(3, 4, strides = 2, padding = "SAME")
  expect_equal(m$output_shape, list(NULL, 4L, 3L))
  m <- keras_model_sequential(input_shape = c(7, 2)) %>%
    layer_locally_connected_1d(3, 4, strides = 3, padding = "Causal")
  expect_equal(m$output_shape, list(NULL, 3L, 3L))
  expect_equal(m$layers[[1]]$config$padding, "causal")
})

test_that("layers take weights = as initial values", {
  w <- list(array(1, c(4, 3, 2)), array(0.5, c(4, 2)))
  model <- keras_model_sequential(input_shape = c(6, 1)) %>%
    layer_locally_connected_1d(2, 3, strides = 1, weights = w, dtype = "float64")
  expect_equal(get_weights(model), w)
  y <- predict(model, array(1, c(1, 6, 1)))
  expect_equal(as.vector(y), rep(3.5, 8))
})

test_that("use_bias = FALSE and activations take effect", {
  model <- keras_model_sequential(input_shape = c(4, 1)) %>%
    layer_locally_connected_1d(1, 1, use_bias = FALSE, activation = "relu",
                               kernel_initializer = "ones")
  expect_length(get_weights(model), 1)
  expect_equal(as.vector(predict(model, array(c(-2, -1, 1, 2), c(1, 4, 1)))), c(0, 0, 1, 2))
})

test_that("automatic names count per class as in Keras", {
  k_clear_session()
  a <- layer_locally_connected_2d(filters = 1, kernel_size = 1)
  b <- layer_locally_connected_2d(filters = 1, kernel_size = 1)
  c1 <- layer_locally_connected_1d(filters = 1, kernel_size = 1)
  d <- layer_locally_connected_2d(filters = 1, kernel_size = 1, name = "mine")
  expect_equal(c(a$name, b$name, c1$name, d$name),
               c("locally_connected2d", "locally_connected2d_1", "locally_connected1d", "mine"))
  expect_equal(keras_model_sequential()$name, "sequential")
  expect_equal(keras_model_sequential()$name, "sequential_1")
})

test_that("regularizers, constraints, trainable and batch_size are stored", {
  layer <- layer_locally_connected_2d(
    filters = 2, kernel_size = 3, kernel_regularizer = regularizer_l2(0.1),
    bias_regularizer = regularizer_l1(0.2), activity_regularizer = regularizer_l1_l2(),
    kernel_constraint = constraint_maxnorm(3, axis = c(0, 1)),
    bias_constraint = constraint_nonneg(), trainable = FALSE, batch_size = 8,
    input_shape = c(5, 5, 1)
  )
  expect_equal(layer$config$kernel_regularizer$l2, 0.1)
  expect_equal(layer$config$bias_regularizer$l1, 0.2)
  expect_equal(layer$config$activity_regularizer, regularizer_l1_l2(0.01, 0.01))
  expect_equal(layer$config$kernel_constraint$args$axis, c(0L, 1L))
  expect_equal(layer$config$bias_constraint$name, "nonneg")
  expect_false(layer$trainable)
  model <- keras_model_sequential() %>% layer_locally_connected_2d(
    filters = 2, kernel_size = 3, batch_input_shape = list(8, 5, 5, 1))
  expect_equal(model$output_shape, list(8L, 3L, 3L, 2L))
})

test_that("a layer applied to an array returns an array", {
  set.seed(7)
  x <- random_array(c(3, 6, 2))
  y <- layer_locally_connected_1d(x, filters = 2, kernel_size = 3,
                                  kernel_initializer = "ones", dtype = "float64")
  expect_equal(dim(y), c(3L, 4L, 2L))
  w <- list(array(1, c(4, 6, 2)), array(0, c(4, 2)))
  expect_close(y, ref_lc_impl1(x, w[[1]], w[[2]], 3, 1, "valid", "channels_last"))
  expect_error(layer_locally_connected_1d(array(1, c(2, 2, 1)), filters = 1, kernel_size = 3),
               class = "lcnn_error_shape")
})

test_that("bad arguments raise classed errors", {
  expect_error(layer_locally_connected_2d(filters = 0, kernel_size = 3),
               class = "lcnn_error_argument")
  expect_error(layer_locally_connected_2d(filters = 2.5, kernel_size = 3),
               class = "lcnn_error_argument")
  expect_error(layer_locally_connected_2d(filters = 2, kernel_size = c(3, 0)),
               class = "lcnn_error_argument")
  expect_error(layer_locally_connected_2d(filters = 2, kernel_size = c(3, 3, 3)),
               class = "lcnn_error_argument")
  expect_error(layer_locally_connected_1d(filters = 2, kernel_size = c(3, 3)),
               class = "lcnn_error_argument")
  expect_error(layer_locally_connected_2d(filters = 2, kernel_size = 3, strides = 0),
               class = "lcnn_error_argument")
  expect_error(layer_locally_connected_2d(filters = 2, kernel_size = 3, strides = 1.5),
               class = "lcnn_error_argument")
  expect_error(layer_locally_connected_2d(filters = 2, kernel_size = 3, padding = "causal"),
               class = "lcnn_error_argument")
  expect_error(layer_locally_connected_2d(filters = 2, kernel_size = 3, padding = "full"),
               class = "lcnn_error_argument")
  expect_error(layer_locally_connected_2d(filters = 2, kernel_size = 3, data_format = "nhwc"),
               class = "lcnn_error_argument")
  expect_error(layer_locally_connected_2d(filters = 2, kernel_size = 3, activation = "mish"),
               class = "lcnn_error_argument")
  expect_error(layer_locally_connected_2d(filters = 2, kernel_size = 3,
                                          kernel_initializer = "orthogonal"),
               class = "lcnn_error_argument")
  expect_error(layer_locally_connected_2d(filters = 2, kernel_size = 3, implementation = 4),
               class = "lcnn_error_argument")
  expect_error(layer_locally_connected_2d(filters = 2, kernel_size = 3, use_bias = NA),
               class = "lcnn_error_argument")
  expect_error(layer_locally_connected_2d(filters = 2, kernel_size = 3, dtype = "float16"),
               class = "lcnn_error_argument")
  expect_error(layer_locally_connected_2d(filters = 2, kernel_size = 3, input_shape = c(5, 5)),
               class = "lcnn_error_argument")
  expect_error(layer_locally_connected_2d(kernel_size = 3), class = "lcnn_error_argument")
  expect_error(layer_locally_connected_2d(filters = 2, kernel_size = 3,
                                          kernel_regularizer = 0.1),
               class = "lcnn_error_argument")
  expect_error(layer_locally_connected_2d(filters = 2, kernel_size = 3, weights = 1),
               class = "lcnn_error_argument")
})

test_that("error messages name the argument, the value and what is expected", {
  expect_snapshot(error = TRUE, {
    layer_locally_connected_2d(filters = 0, kernel_size = 3)
    layer_locally_connected_2d(filters = 4, kernel_size = c(3, 3, 3))
    layer_locally_connected_1d(filters = 4, kernel_size = 3, strides = 0)
    layer_locally_connected_2d(filters = 4, kernel_size = 3, padding = "causal")
    layer_locally_connected_2d(filters = 4, kernel_size = 3, data_format = "NHWC")
    layer_locally_connected_2d(filters = 4, kernel_size = 3, activation = "mish")
    layer_locally_connected_2d(filters = 4, kernel_size = 3, kernel_initializer = "orthogonal")
    layer_locally_connected_2d(filters = 4, kernel_size = 3, implementation = 0)
    layer_locally_connected_2d(kernel_size = 3)
  })
})

test_that("an output size <= 0 names the layer and the shapes", {
  model <- keras_model_sequential(input_shape = c(2, 2, 3))
  expect_error(model %>% layer_locally_connected_2d(4, 3, name = "too_big"),
               class = "lcnn_error_shape")
  expect_length(model$layers, 0)
  expect_snapshot(error = TRUE, {
    keras_model_sequential(input_shape = c(2, 2, 3)) %>%
      layer_locally_connected_2d(4, 3, name = "too_big")
  })
})
