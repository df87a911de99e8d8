test_that("predictions do not depend on batch size or thread count beyond rounding", {
  set.seed(41)
  model <- keras_model_sequential(input_shape = c(9, 9, 3)) %>%
    layer_locally_connected_2d(4, 3, strides = 2, activation = "relu") %>%
    layer_locally_connected_2d(2, 2, padding = "same", data_format = "channels_last")
  x <- random_array(c(7, 9, 9, 3))
  y <- predict(model, x)
  expect_equal(dim(y), c(7L, 4L, 4L, 2L))
  # float32: equal up to rounding (small batches take a different GEMM path).
  expect_equal(predict(model, x, batch_size = 1), y, tolerance = 1e-6)
  expect_equal(predict(model, x, batch_size = 3), y, tolerance = 1e-6)
  withr::local_options(lcnn.num_threads = 1)
  expect_equal(predict(model, x, batch_size = 100), y, tolerance = 1e-6)
})

test_that("predict() is the composition of the layers applied one by one", {
  set.seed(42)
  model <- keras_model_sequential(input_shape = c(12, 2), dtype = "float64") %>%
    layer_locally_connected_1d(3, 3, activation = "tanh") %>%
    layer_locally_connected_1d(2, 2, strides = 2, padding = "causal")
  w <- get_weights(model)
  x <- random_array(c(4, 12, 2))
  h <- ref_lc_impl1(x, w[[1]], w[[2]], 3, 1, "valid", "channels_last", "tanh")
  expect_close(predict(model, x), ref_lc_impl1(h, w[[3]], w[[4]], 2, 2, "causal",
                                               "channels_last"))
})

test_that("integer and logical inputs are accepted; a matrix needs the right rank", {
  model <- keras_model_sequential(input_shape = c(4, 1)) %>%
    layer_locally_connected_1d(1, 2, kernel_initializer = "ones")
  expect_equal(as.vector(predict(model, array(1:4, c(1, 4, 1)))), c(3, 5, 7))
  expect_equal(as.vector(predict(model, array(TRUE, c(1, 4, 1)))), c(2, 2, 2))
  expect_error(predict(model, matrix(1, 2, 4)), class = "lcnn_error_shape")
})

test_that("the engine network is rebuilt when weights change", {
  model <- keras_model_sequential(input_shape = c(4, 1)) %>%
    layer_locally_connected_1d(1, 2, kernel_initializer = "ones")
  x <- array(1, c(1, 4, 1))
  expect_equal(as.vector(predict(model, x)), c(2, 2, 2))
  set_weights(model, list(array(2, c(3, 2, 1)), array(1, c(3, 1))))
  expect_equal(as.vector(predict(model, x)), c(5, 5, 5))
})

test_that("the engine network follows a model inside a model, and layers added", {
  inner <- keras_model_sequential(input_shape = c(4, 1)) %>%
    layer_locally_connected_1d(1, 2, kernel_initializer = "ones")
  outer <- keras_model_sequential(input_shape = c(4, 1))
  outer$add(inner)
  x <- array(1, c(1, 4, 1))
  expect_equal(as.vector(predict(outer, x)), c(2, 2, 2))
  set_weights(inner, list(array(2, c(3, 2, 1)), array(1, c(3, 1))))
  expect_equal(as.vector(predict(outer, x)), c(5, 5, 5))
  outer %>% layer_flatten() %>% layer_dense(1, kernel_initializer = "ones")
  expect_equal(as.vector(predict(outer, x)), 15)
})

test_that("a model whose inner model gained a layer after it was built is refused", {
  # keras fails there too: the outer model's next layer was built for the
  # inner model's old output.
  withr::defer(k_clear_session())  # the layers' names count on
  set.seed(46)
  inner <- keras_model_sequential(input_shape = 4, name = "inner") %>% layer_dense(3)
  outer <- keras_model_sequential(input_shape = 4, name = "outer")
  outer$add(inner)
  outer %>% layer_dense(1)
  outer %>% compile(optimizer = "adam", loss = "mse")
  x <- matrix(runif(40), 10)
  fit(outer, x, runif(10), epochs = 1, verbose = 0)
  inner %>% layer_dense(2)
  expect_snapshot(error = TRUE, predict(outer, x))
  expect_error(fit(outer, x, runif(10), epochs = 1, verbose = 0), class = "lcnn_error_state")
  outer$trainer <- NULL  # as after readRDS()
  expect_error(fit(outer, x, runif(10), epochs = 1, verbose = 0), class = "lcnn_error_state")
  expect_error(predict(outer, x), class = "lcnn_error_state")
})

test_that("a model whose inner model gained a layer of the same shape trains the new network", {
  set.seed(47)
  inner <- keras_model_sequential(input_shape = 4) %>% layer_dense(3)
  outer <- keras_model_sequential(input_shape = 4) %>% inner %>% layer_dense(1)
  outer %>% compile(optimizer = "sgd", loss = "mse")
  x <- matrix(runif(40, -1, 1), 10)
  y <- runif(10)
  fit(outer, x, y, epochs = 1, verbose = 0)
  # The blocks still line up: only a new network keeps the relu.
  inner %>% layer_activation("relu")
  fit(outer, x, y, epochs = 1, verbose = 0)
  w <- get_weights(outer)
  by_hand <- pmax(sweep(x %*% w[[1]], 2, w[[2]], `+`), 0) %*% w[[3]] + as.vector(w[[4]])
  expect_equal(predict(outer, x), by_hand, tolerance = 1e-6)
  expect_equal(evaluate(outer, x, y, verbose = 0)[["loss"]], mean((by_hand - y)^2),
               tolerance = 1e-6)
})

test_that("a trained model predicts with its trainer, as a network of its weights would", {
  set.seed(44)
  model <- keras_model_sequential(input_shape = c(6, 5, 2)) %>%
    layer_locally_connected_2d(3, 2, activation = "relu") %>%
    layer_dropout(0.5) %>%
    layer_flatten() %>%
    layer_dense(2)
  model %>% compile(optimizer = "adam", loss = "mse")
  x <- random_array(c(9, 6, 5, 2))
  predict(model, x)  # builds a network of the model's own
  expect_false(is.null(model$engine))
  fit(model, x, matrix(runif(18), 9), epochs = 2, verbose = 0)
  got <- predict(model, x, batch_size = 4)
  # The trainer ran it, and the network built before the training went.
  expect_null(model$engine)
  rebuilt <- function() {
    lcnn:::.network_predict(lcnn:::model_network(model), list(x), 4, lcnn_num_threads())[[1]]
  }
  expect_identical(got, rebuilt())
  # Weights set since are the model's: its own network again.
  weights <- lapply(get_weights(model), function(w) w * 0.5)
  set_weights(model, weights)
  expect_identical(predict(model, x, batch_size = 4), rebuilt())
  expect_false(isTRUE(all.equal(predict(model, x), got)))
})

test_that("a model survives saveRDS() and readRDS()", {
  set.seed(43)
  model <- keras_model_sequential(input_shape = c(5, 5, 2)) %>%
    layer_locally_connected_2d(3, 2)
  x <- random_array(c(2, 5, 5, 2))
  y <- predict(model, x)
  path <- withr::local_tempfile(fileext = ".rds")
  saveRDS(model, path)
  restored <- readRDS(path)
  expect_equal(predict(restored, x), y)
  expect_equal(get_weights(restored), get_weights(model))
})

test_that("the engine's forward pass times itself for bench/ and leaves its network as it was", {
  set.seed(44)
  for (dtype in c("float32", "float64")) {
    model <- keras_model_sequential(input_shape = c(6, 6, 2), dtype = dtype) %>%
      layer_locally_connected_2d(3, 3, activation = "relu") %>%
      layer_flatten() %>%
      layer_dense(2)
    x <- random_array(c(5, 6, 6, 2))
    y <- predict(model, x)
    seconds <- lcnn:::.network_forward_seconds(lcnn:::model_network(model), 8L, 3L, 2L)
    expect_length(seconds, 3)
    expect_true(all(is.finite(seconds) & seconds > 0))
    # Its batch of 8 used the network's buffers; predict() resizes them back.
    expect_identical(predict(model, x), y)
  }
  expect_error(lcnn:::.network_forward_seconds(lcnn:::model_network(model), 0L, 3L, 1L),
               "at least 1")
})

test_that("bad inputs raise classed errors", {
  model <- keras_model_sequential(input_shape = c(6, 6, 2)) %>%
    layer_locally_connected_2d(3, 2)
  expect_error(predict(model, array(0, c(2, 6, 6))), class = "lcnn_error_shape")
  expect_error(predict(model, array(0, c(2, 6, 5, 2))), class = "lcnn_error_shape")
  expect_error(predict(model, 1:10), class = "lcnn_error_shape")
  expect_error(predict(model, "x"), class = "lcnn_error_argument")
  expect_error(predict(model, array(0, c(2, 6, 6, 2)), batch_size = 0),
               class = "lcnn_error_argument")
  expect_error(predict(model, array(0, c(2, 6, 6, 2)), verbose = 5),
               class = "lcnn_error_argument")
  expect_error(predict(keras_model_sequential(), array(0, c(1, 2))), class = "lcnn_error_state")
  expect_snapshot(error = TRUE, {
    predict(model, array(0, c(2, 6, 6)))
    predict(model, array(0, c(2, 6, 5, 2)))
    predict(model, 1:10)
  })
})

test_that("results of 2 MiB and more are mapped apart, counted until R frees them", {
  skip_unless_results_mapped()
  set.seed(43)
  model <- keras_model_sequential(input_shape = c(10, 10, 1)) %>%
    layer_locally_connected_2d(16, 3)
  x <- random_array(c(300, 10, 10, 1))
  invisible(gc())
  before <- .result_memory()[["unfreed_bytes"]]
  y <- predict(model, x, batch_size = 50)  # 300 * 8 * 8 * 16 doubles, 2.46 MB
  held <- .result_memory()[["unfreed_bytes"]] - before
  expect_gte(held, 8 * length(y))
  expect_lte(held, 8 * length(y) + 65536)  # with R's header, in whole pages (4 or 64 KiB)
  # The same values as a result from R's heap (50 samples, 410 KB), batch by batch.
  expect_identical(y[1:50, , , , drop = FALSE],
                   predict(model, x[1:50, , , , drop = FALSE], batch_size = 50))
  copy <- y
  copy[1] <- -1
  expect_false(y[1] == -1)
  path <- withr::local_tempfile(fileext = ".rds")
  saveRDS(y, path)
  expect_identical(readRDS(path), y)
  rm(y, copy)
  invisible(gc())
  expect_equal(.result_memory()[["unfreed_bytes"]], before)
})

test_that("lcnn runs R's collector before its unfreed results pass their budget", {
  skip_unless_results_mapped()
  model <- large_result_model()
  x <- large_result_input()
  start <- .result_memory()
  unfreed <- pooled <- budget <- numeric(48)
  for (i in 1:48) {
    y <- predict(model, x)  # 31.5 MB each, kept until the next one replaces it
    unfreed[i] <- .result_memory()[["unfreed_bytes"]]
    pooled[i] <- .result_memory()[["pooled_bytes"]]
    budget[i] <- .result_memory()[["budget_bytes"]]
  }
  expect_true(all(unfreed + pooled <= budget))
  expect_gte(.result_memory()[["collections"]], start[["collections"]] + 4)
  # Each result was alive at a collection, which promotes it past the young
  # generation: the full collections after the young ones keep what is left
  # of them from piling up, and the budget at its minimum.
  expect_lte(max(unfreed[25:48]), 256 * 2^20)
  expect_equal(budget[48], 256 * 2^20)
})

test_that("the results' budget grows to twice what a collection leaves alive", {
  skip_unless_results_mapped()
  model <- large_result_model()
  x <- large_result_input()
  kept <- vector("list", 12)
  unfreed <- budget <- numeric(12)
  for (i in 1:12) {
    kept[[i]] <- predict(model, x)  # 31.5 MB each, all kept: 378 MB in the end
    unfreed[i] <- .result_memory()[["unfreed_bytes"]]
    budget[i] <- .result_memory()[["budget_bytes"]]
  }
  expect_true(all(unfreed <= budget))
  expect_gte(budget[12], 2 * 8 * large_result_bytes)  # eight alive at the collection
  rm(kept)
  invisible(gc())
})

test_that("a freed result's memory serves the next result of its size, written whole", {
  skip_unless_results_mapped()
  set.seed(44)
  model <- large_result_model()
  inputs <- list(random_array(c(120, 2048, 1)), random_array(c(120, 2048, 1)))
  expected <- lapply(inputs, function(x) predict(model, x))  # 31.5 MB each
  start <- .result_memory()
  unfreed <- pooled <- budget <- numeric(24)
  for (i in 1:24) {
    # Alternating inputs: a block that served one input's result serves the
    # other's next, and whatever the engine left unwritten would show.
    y <- predict(model, inputs[[i %% 2 + 1]])
    expect_identical(y, expected[[i %% 2 + 1]])
    unfreed[i] <- .result_memory()[["unfreed_bytes"]]
    pooled[i] <- .result_memory()[["pooled_bytes"]]
    budget[i] <- .result_memory()[["budget_bytes"]]
  }
  expect_gte(.result_memory()[["reuses"]] - start[["reuses"]], 12)
  expect_true(all(unfreed + pooled <= budget))
  # The pool goes back at R's second collection after the last result,
  # with the results R frees meanwhile.
  rm(y, expected)
  collect_twice()
  expect_equal(.result_memory()[["pooled_bytes"]], 0)
  expect_lte(.result_memory()[["unfreed_bytes"]], start[["unfreed_bytes"]] - 2 * large_result_bytes)
  # A result that outlives the pool is unmapped as soon as R frees it.
  y <- predict(model, inputs[[1]])
  collect_twice()
  rm(y)
  invisible(gc())
  expect_equal(.result_memory()[["pooled_bytes"]], 0)
})

test_that("pooled blocks give way to results of other sizes within the budget", {
  skip_unless_results_mapped()
  large <- large_result_model()
  small <- keras_model_sequential(input_shape = c(512, 1)) %>%
    layer_locally_connected_1d(16, 1)
  collect_twice()
  before <- .result_memory()[["unfreed_bytes"]]
  y <- predict(small, array(1, c(100, 512, 1)))  # 6.6 MB each
  small_block <- .result_memory()[["unfreed_bytes"]] - before
  for (i in 1:12) y <- predict(large, large_result_input())  # 31.5 MB each
  start <- .result_memory()
  unfreed <- pooled <- budget <- numeric(120)
  for (i in 1:120) {
    y <- predict(small, array(1, c(100, 512, 1)))
    unfreed[i] <- .result_memory()[["unfreed_bytes"]]
    pooled[i] <- .result_memory()[["pooled_bytes"]]
    budget[i] <- .result_memory()[["budget_bytes"]]
  }
  # Pooled large blocks give way to new small results within the budget.
  expect_true(all(unfreed + pooled <= budget))
  expect_gte(.result_memory()[["collections"]], start[["collections"]] + 2)
  expect_gt(.result_memory()[["pooled_bytes"]], 0)
  expect_equal(.result_memory()[["pooled_bytes"]] %% small_block, 0)
})

test_that("predict() needs x and refuses arguments it does not take", {
  model <- keras_model_sequential(input_shape = 2) %>% layer_dense(1)
  x <- matrix(runif(6), 3, 2)
  expect_error(predict(model), class = "lcnn_error_argument")
  expect_error(predict(model, x, batchsize = 1), class = "lcnn_error_argument")
  expect_error(predict(model, newdata = x), class = "lcnn_error_argument")
  expect_equal(dim(predict(model, x, batch_size = 1, verbose = 0)), c(3, 1))
  expect_snapshot(error = TRUE, {
    predict(model)
    predict(model, x, batchsize = 1)
  })
})
