test_that("the image data format comes from the option, then keras.json, then default", {
  home <- withr::local_tempdir()
  withr::local_envvar(KERAS_HOME = home)
  withr::local_options(lcnn.image_data_format = NULL)
  expect_equal(k_image_data_format(), "channels_last")
  writeLines('{"floatx": "float32", "image_data_format": "channels_first", "backend": "tensorflow"}',
             file.path(home, "keras.json"))
  expect_equal(k_image_data_format(), "channels_first")
  layer <- layer_locally_connected_2d(filters = 1, kernel_size = 1)
  expect_equal(layer$config$data_format, "channels_first")
  withr::local_options(lcnn.image_data_format = "channels_last")
  expect_equal(k_image_data_format(), "channels_last")
  withr::local_options(lcnn.image_data_format = "nchw")
  expect_error(k_image_data_format(), class = "lcnn_error_argument")
})

test_that("keras.json is only read", {
  home <- withr::local_tempdir()
  withr::local_envvar(KERAS_HOME = home)
  withr::local_options(lcnn.image_data_format = NULL)
  k_image_data_format()
  expect_false(file.exists(file.path(home, "keras.json")))
})

test_that("the thread count comes from the option, then LCNN_NUM_THREADS", {
  withr::local_options(lcnn.num_threads = NULL)
  withr::local_envvar(LCNN_NUM_THREADS = "3", OMP_THREAD_LIMIT = "1", OMP_NUM_THREADS = "1")
  expect_equal(lcnn_num_threads(), 3L)
  withr::local_options(lcnn.num_threads = 2)
  expect_equal(lcnn_num_threads(), 2L)
  withr::local_options(lcnn.num_threads = 0)
  expect_snapshot(error = TRUE, lcnn_num_threads())
  withr::local_options(lcnn.num_threads = "two")
  expect_snapshot(error = TRUE, lcnn_num_threads())
  withr::local_options(lcnn.num_threads = NULL)
  withr::local_envvar(LCNN_NUM_THREADS = "many")
  expect_snapshot(error = TRUE, lcnn_num_threads())
  withr::local_envvar(LCNN_NUM_THREADS = "2.5")
  expect_snapshot(error = TRUE, lcnn_num_threads())
  expect_error(lcnn_num_threads(), class = "lcnn_error_argument")
})

test_that("by default the thread count is the physical cores, capped by OpenMP's limits", {
  withr::local_options(lcnn.num_threads = NULL)
  withr::local_envvar(LCNN_NUM_THREADS = "", OMP_THREAD_LIMIT = "", OMP_NUM_THREADS = "")
  cores <- lcnn:::.engine_available_cores()
  expect_gte(cores, 1L)
  expect_lte(cores, parallel::detectCores())
  expect_equal(lcnn_num_threads(), cores)
  withr::local_envvar(OMP_NUM_THREADS = "1,4")
  expect_equal(lcnn_num_threads(), 1L)
  withr::local_envvar(OMP_NUM_THREADS = "1000")
  expect_equal(lcnn_num_threads(), cores)
  withr::local_envvar(OMP_THREAD_LIMIT = "1")
  expect_equal(lcnn_num_threads(), 1L)
  # Values OpenMP runtimes would not take are ignored, as they ignore them.
  withr::local_envvar(OMP_THREAD_LIMIT = "two", OMP_NUM_THREADS = "0")
  expect_equal(lcnn_num_threads(), cores)
})

test_that("the core count is that of distinct physical cores the process may use", {
  skip_on_os(c("windows", "mac", "solaris"))
  info <- readLines("/proc/cpuinfo")
  field <- function(name) trimws(sub(".*:", "", grep(paste0("^", name, "\\s*:"), info, value = TRUE)))
  cores <- unique(paste(field("physical id"), field("core id")))
  skip_if(length(cores) == 0, "no core ids in /proc/cpuinfo")
  allowed <- suppressWarnings(system2("nproc", stdout = TRUE))
  skip_if(!identical(as.integer(allowed), length(field("processor"))),
          "the process may not run on every CPU")
  expect_equal(lcnn:::.engine_available_cores(), length(cores))
})

test_that("a forked process defaults to one thread and can still use more", {
  skip_on_os("windows")
  withr::local_options(lcnn.num_threads = 2)
  set.seed(301)
  x <- random_array(c(30, 12, 3))
  model <- keras_model_sequential(input_shape = c(12, 3)) %>%
    layer_locally_connected_1d(4, 3) %>%
    layer_flatten() %>%
    layer_dense(2)
  expected <- predict(model, x)
  expect_false(lcnn:::.engine_in_forked_child())
  child <- parallel::mcparallel({
    options(lcnn.num_threads = NULL)
    Sys.setenv(LCNN_NUM_THREADS = "")
    default <- lcnn_num_threads()
    options(lcnn.num_threads = 2)
    list(default = default, prediction = predict(model, x))
  })
  result <- parallel::mccollect(child, timeout = 60)[[1]]
  expect_equal(result$default, 1L)
  expect_identical(result$prediction, expected)
  withr::local_options(lcnn.num_threads = NULL)
  withr::local_envvar(LCNN_NUM_THREADS = "", OMP_THREAD_LIMIT = "", OMP_NUM_THREADS = "")
  expect_equal(lcnn_num_threads(), lcnn:::.engine_available_cores())
})

# Locally connected 2D (strides, "same") and 1D (strides, "same"; stride 1,
# whose input gradient takes three colour classes), a convolution, dropout
# and dense layers, in float32 where summation order would show.
thread_test_model <- function() {
  keras_model_sequential(input_shape = c(12, 10, 2)) %>%
    layer_locally_connected_2d(3, c(3, 2), strides = c(2, 1), padding = "same",
                               activation = "relu") %>%
    layer_conv_2d(4, 3, padding = "same", activation = "tanh") %>%
    layer_reshape(c(60, 4)) %>%
    layer_locally_connected_1d(5, 5, strides = 2, padding = "same") %>%
    layer_locally_connected_1d(3, 3, activation = "relu") %>%
    layer_flatten() %>%
    layer_dense(8, activation = "relu") %>%
    layer_dropout(0.2) %>%
    layer_dense(3, activation = "softmax")
}

test_that("predictions, gradients and training do not depend on the thread count", {
  set.seed(302)
  x <- random_array(c(40, 12, 10, 2))
  y <- sample(0:2, 40, replace = TRUE)
  runs <- lapply(c(1L, 2L, 3L), function(threads) {
    withr::local_options(lcnn.num_threads = threads)
    set.seed(303)
    model <- thread_test_model()
    model %>% compile(optimizer = "adam", loss = "sparse_categorical_crossentropy")
    initial <- get_weights(model)
    t <- trainer_for(model, x, y)
    d <- t$data
    gradients <- lcnn:::.trainer_gradients(t$trainer, d$x, d$y, d$weights, d$n, c(1, 2), threads)
    prediction <- predict(model, x)
    set.seed(304)
    history <- fit(model, x, y, epochs = 3, batch_size = 16, verbose = 0)
    list(initial = initial, gradients = gradients, prediction = prediction,
         loss = history$metrics$loss, weights = get_weights(model))
  })
  expect_false(isTRUE(all.equal(runs[[1]]$weights, runs[[1]]$initial)))
  expect_identical(runs[[2]], runs[[1]])
  expect_identical(runs[[3]], runs[[1]])
})

test_that("the engine flushes subnormal floats to zero, as TensorFlow does", {
  for (dtype in c("float32", "float64")) {
    model <- keras_model_sequential(input_shape = 2) %>%
      layer_dense(1, use_bias = FALSE, kernel_initializer = "ones", dtype = dtype)
    tiny <- if (dtype == "float32") 1e-39 else 1e-310
    expect_equal(predict(model, rbind(c(tiny, 0), c(1, 2)))[, 1], c(0, 3), label = dtype)
  }
})

test_that("R's own arithmetic keeps subnormals during and after fit() and predict()", {
  subnormal <- function() .Machine$double.xmin / 4
  set.seed(305)
  x <- random_array(c(20, 3))
  model <- keras_model_sequential(input_shape = 3) %>% layer_dense(1)
  model %>% compile(optimizer = "adam", loss = "mse")
  seen <- numeric()
  record <- callback_lambda(on_batch_end = function(batch, logs) seen <<- c(seen, subnormal()))
  model %>% fit(x, x[, 1], epochs = 1, batch_size = 5, verbose = 0, callbacks = list(record))
  predict(model, x)
  expect_length(seen, 4)
  expect_true(all(seen > 0))
  expect_gt(subnormal(), 0)
  expect_equal(subnormal() * 4, .Machine$double.xmin)
})
