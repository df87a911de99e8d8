test_that("lcnn_devices() lists the usable devices, lcnn_cuda_available() says if any", {
  devices <- lcnn_devices()
  expect_s3_class(devices, "data.frame")
  expect_named(devices, c("index", "name", "memory", "compute_capability"))
  expect_type(devices$index, "integer")
  expect_type(devices$name, "character")
  expect_type(devices$memory, "double")
  expect_type(devices$compute_capability, "character")
  expect_identical(lcnn_cuda_available(), nrow(devices) > 0)
  state <- lcnn:::.cuda_device_state()
  expect_true(state$availability %in% c("available", "not_built", "no_driver", "no_device",
                                        "error"))
  expect_identical(state$availability == "not_built", !state$built)
  expect_identical(state$availability == "available", nrow(devices) > 0)
  if (!lcnn_cuda_available()) expect_true(nzchar(state$detail))
})

test_that("lcnn_devices() describes each GPU", {
  skip_if_no_cuda()
  devices <- lcnn_devices()
  expect_identical(devices$index, seq_len(nrow(devices)) - 1L)
  expect_true(all(nzchar(devices$name)))
  expect_true(all(devices$memory > 2^30))
  expect_match(devices$compute_capability, "^[0-9]+\\.[0-9]$")
})

test_that("the device resolver: cpu without asking CUDA, auto the GPU when one is usable", {
  not_queried <- function() stop("the CUDA state must not be queried")
  expect_identical(lcnn:::resolve_device("cpu", state = not_queried()), "cpu")
  expect_identical(lcnn:::resolve_device("CPU", state = not_queried()), "cpu")
  gpu <- fake_device_state()
  expect_identical(lcnn:::resolve_device("auto", state = gpu), "cuda")
  expect_identical(lcnn:::resolve_device("auto", dtype = "float64", state = gpu), "cpu")
  for (availability in c("no_driver", "no_device", "error")) {
    expect_identical(lcnn:::resolve_device("auto", state = fake_device_state(
      availability = availability, detail = "none")), "cpu")
  }
  expect_identical(lcnn:::resolve_device("auto", state = fake_device_state(
    built = FALSE, availability = "not_built", detail = "no CUDA")), "cpu")
})

test_that("the device resolver says whether the build or the machine lacks CUDA", {
  resolve_cuda <- function(state) lcnn:::resolve_device("cuda", state, call = NULL)
  not_built <- fake_device_state(built = FALSE, availability = "not_built",
                                 detail = "lcnn was built without CUDA", runtime_version = 0,
                                 driver_version = 0)
  no_driver <- fake_device_state(availability = "no_driver",
                                 detail = "no NVIDIA driver is installed", driver_version = 0)
  no_device <- fake_device_state(availability = "no_device",
                                 detail = "cudaGetDeviceCount: no CUDA-capable device is detected")
  old_driver <- fake_device_state(
    availability = "error", driver_version = 12020,
    detail = "cudaGetDeviceCount: CUDA driver version is insufficient for CUDA runtime version")
  for (state in list(not_built, no_driver, no_device, old_driver)) {
    expect_error(resolve_cuda(state), class = "lcnn_error_device")
  }
  expect_snapshot(error = TRUE, {
    resolve_cuda(not_built)
    resolve_cuda(no_driver)
    resolve_cuda(no_device)
    resolve_cuda(old_driver)
  })
})

test_that("device = 'cuda' with a GPU gives the GPU, for float32 models only", {
  two_gpus <- fake_device_state(names = c("NVIDIA H100 80GB HBM3", "NVIDIA H200"))
  expect_identical(lcnn:::resolve_device("cuda", state = two_gpus), "cuda")
  expect_error(lcnn:::resolve_device("cuda", dtype = "float64", state = two_gpus),
               class = "lcnn_error_device")
  expect_snapshot(error = TRUE,
                  lcnn:::resolve_device("cuda", dtype = "float64", state = two_gpus, call = NULL))
})

test_that("the GPU takes the layers it has kernels for and names the first it lacks", {
  gpu <- fake_device_state()
  as_if_compiled_for <- function(model, request) {
    model %>% compile(optimizer = "adam", loss = "mse", device = "cpu")
    compiled <- model$compiled
    compiled$device <- "cuda"
    compiled$requested_device <- request
    model$compiled <- compiled
    model
  }
  supported <- keras_model_sequential(input_shape = c(6, 5, 2)) %>%
    layer_locally_connected_2d(8, c(3, 3), activation = "relu") %>%
    layer_flatten() %>%
    layer_dense(3, activation = "softmax")
  as_if_compiled_for(supported, "cuda")
  graph <- lcnn:::flat_graph(supported)
  expect_identical(lcnn:::device_for_model(supported, graph, state = gpu), "cuda")
  inputs <- layer_input(shape = 4, name = "features")
  outputs <- layer_add(list(inputs %>% layer_dense(3), inputs %>% layer_dense(3)),
                       name = "sum") %>%
    layer_dense(1)
  branching <- keras_model(inputs, outputs, name = "branching")
  as_if_compiled_for(branching, "cuda")
  graph <- lcnn:::flat_graph(branching)
  expect_error(lcnn:::device_for_model(branching, graph, state = gpu),
               class = "lcnn_error_device")
  expect_snapshot(error = TRUE, lcnn:::device_for_model(branching, graph, state = gpu,
                                                        call = NULL))
  as_if_compiled_for(branching, "auto")
  expect_identical(lcnn:::device_for_model(branching, graph, state = gpu), "cpu")
  # A GPU model read back where there is none: "auto" trains on the CPU.
  no_driver <- fake_device_state(availability = "no_driver", detail = "none", driver_version = 0)
  as_if_compiled_for(supported, "auto")
  expect_identical(lcnn:::device_for_model(supported, lcnn:::flat_graph(supported),
                                           state = no_driver), "cpu")
  as_if_compiled_for(supported, "cuda")
  expect_error(lcnn:::device_for_model(supported, lcnn:::flat_graph(supported),
                                       state = no_driver), class = "lcnn_error_device")
})

test_that("the GPU takes weight and activity regularizers and constraints", {
  model <- keras_model_sequential(input_shape = 3) %>%
    layer_dense(units = 2, kernel_regularizer = regularizer_l1_l2(0.01, 0.02),
                activity_regularizer = regularizer_l1(0.01),
                kernel_constraint = constraint_maxnorm(2), bias_constraint = constraint_nonneg())
  model %>% compile(optimizer = "sgd", loss = "mse", device = "cpu")
  compiled <- model$compiled
  compiled$device <- "cuda"
  compiled$requested_device <- "cuda"
  model$compiled <- compiled
  expect_identical(lcnn:::device_for_model(model, lcnn:::flat_graph(model),
                                           state = fake_device_state()), "cuda")
})

test_that("compile() validates device, records it and print() shows it", {
  model <- keras_model_sequential(input_shape = 3) %>% layer_dense(2)
  expect_no_match(paste(capture.output(print(model)), collapse = "\n"), "device")
  model %>% compile(optimizer = "sgd", loss = "mse")
  expect_identical(model$compiled$device, "cpu")
  expect_output(print(model), "Compiled for device: cpu", fixed = TRUE)
  model %>% compile(optimizer = "adam", loss = "mae", device = "cpu")
  expect_identical(model$compiled$device, "cpu")
  expect_error(compile(model, optimizer = "sgd", loss = "mse", device = "gpu"),
               class = "lcnn_error_argument")
  expect_error(compile(model, optimizer = "sgd", loss = "mse", device = c("cpu", "cuda")),
               class = "lcnn_error_argument")
  expect_error(compile(model, optimizer = "sgd", loss = "mse", device = NA_character_),
               class = "lcnn_error_argument")
  if (!lcnn_cuda_available()) {
    expect_error(compile(model, optimizer = "sgd", loss = "mse", device = "cuda"),
                 class = "lcnn_error_device")
  }
  expect_identical(model$compiled$optimizer$name, "adam")
  expect_snapshot(error = TRUE, {
    compile(model, optimizer = "sgd", loss = "mse", device = "gpu")
    compile(model, optimizer = "sgd", loss = "mse", device = 1)
  })
})

test_that("the device survives saveRDS() and a model compiled without one runs on the CPU", {
  set.seed(1)
  x <- matrix(runif(30), 10, 3)
  y <- matrix(runif(20), 10, 2)
  model <- keras_model_sequential(input_shape = 3) %>% layer_dense(2)
  model %>% compile(optimizer = "sgd", loss = "mse", device = "auto")
  fit(model, x, y, epochs = 1, verbose = 0)
  restored <- readRDS({path <- withr::local_tempfile(); saveRDS(model, path); path})
  expect_identical(restored$compiled$device, "cpu")
  expect_output(print(restored), "Compiled for device: cpu", fixed = TRUE)
  expect_equal(predict(restored, x), predict(model, x))
  compiled <- restored$compiled
  compiled$device <- NULL
  restored$compiled <- compiled
  expect_output(print(restored), "Compiled for device: cpu", fixed = TRUE)
  history <- fit(restored, x, y, epochs = 2, verbose = 0)
  expect_length(history$metrics$loss, 2)
  restored %>% compile(optimizer = "sgd", loss = "mse")
  expect_identical(restored$compiled$device, "cpu")
})

test_that("a model compiled for the GPU here trains on the CPU with auto, or says why not", {
  skip_if(lcnn_cuda_available(), "this machine has a usable GPU")
  set.seed(3)
  x <- matrix(runif(30), 10, 3)
  y <- matrix(runif(20), 10, 2)
  model <- keras_model_sequential(input_shape = 3) %>% layer_dense(2)
  model %>% compile(optimizer = "sgd", loss = "mse")
  compiled <- model$compiled
  compiled$device <- "cuda"
  model$compiled <- compiled
  fit(model, x, y, epochs = 1, verbose = 0)
  expect_identical(model$compiled$device, "cpu")
  compiled$requested_device <- "cuda"
  model$compiled <- compiled
  model$trainer <- NULL
  expect_error(fit(model, x, y, epochs = 1, verbose = 0), class = "lcnn_error_device")
})

test_that("without a usable GPU, the engine refuses a device trainer with an error", {
  skip_if(lcnn_cuda_available(), "this machine has a usable GPU")
  set.seed(4)
  x <- matrix(runif(12), 4, 3)
  y <- matrix(runif(4), 4, 1)
  model <- keras_model_sequential(input_shape = 3) %>% layer_dense(1)
  model %>% compile(optimizer = "sgd", loss = "mse", device = "cpu")
  t <- trainer_for(model, x, y)
  graph <- lcnn:::flat_graph(model)
  spec <- lcnn:::training_spec(model, graph, t$data)
  # A build without CUDA says so; a CUDA build without a driver or device
  # fails at its first CUDA call, as an R error.
  expect_error(lcnn:::.trainer_create(lcnn:::network_spec(graph), "float32", spec, "cuda", 1L),
               "CUDA|cuda|cuBLAS|cublas")
})

# The GPU path itself: the same models trained on the CPU and on the GPU
# agree to float32 rounding.
gpu_model <- function(device, output = "softmax") {
  set.seed(11)
  keras_model_sequential(input_shape = c(8, 7, 2)) %>%
    layer_locally_connected_2d(8, c(3, 3), activation = "relu") %>%
    layer_batch_normalization() %>%
    layer_flatten() %>%
    layer_dropout(0.2) %>%
    layer_dense(3, activation = output)
}

gpu_data <- function() {
  set.seed(12)
  list(x = array(runif(40 * 8 * 7 * 2), c(40, 8, 7, 2)), y = sample(0:2, 40, replace = TRUE))
}

test_that("on a GPU, 'auto' and 'cuda' train there and match the CPU", {
  skip_if_no_cuda()
  d <- gpu_data()
  histories <- list()
  weights <- list()
  for (device in c("cpu", "cuda", "auto")) {
    model <- gpu_model(device)
    model %>% compile(optimizer = optimizer_adam(0.01), loss = "sparse_categorical_crossentropy",
                      metrics = "accuracy", device = device)
    expect_identical(model$compiled$device, if (device == "cpu") "cpu" else "cuda")
    set.seed(13)
    histories[[device]] <- fit(model, d$x, d$y, epochs = 3, batch_size = 16, verbose = 0)
    weights[[device]] <- get_weights(model)
    expect_equal(predict(model, d$x), predict(model, d$x, batch_size = 7), tolerance = 1e-5)
    expect_named(evaluate(model, d$x, d$y), c("loss", "accuracy"))
  }
  expect_equal(histories$cuda$metrics$loss, histories$cpu$metrics$loss, tolerance = 1e-4)
  expect_equal(weights$cuda, weights$cpu, tolerance = 1e-4)
  expect_identical(weights$auto, weights$cuda)
})

test_that("on a GPU, set.seed() makes training reproducible bit for bit", {
  skip_if_no_cuda()
  d <- gpu_data()
  run <- function() {
    model <- gpu_model("cuda", output = "linear")
    model %>% compile(optimizer = optimizer_sgd(0.05, momentum = 0.9, nesterov = TRUE),
                      loss = "mse", device = "cuda")
    set.seed(14)
    fit(model, d$x, matrix(runif(120), 40, 3), epochs = 2, batch_size = 16, verbose = 0)
    get_weights(model)
  }
  expect_identical(run(), run())
})

test_that("on a GPU, a model with an unsupported layer is refused by name or runs on the CPU", {
  skip_if_no_cuda()
  inputs <- layer_input(shape = 4, name = "features")
  outputs <- layer_add(list(inputs %>% layer_dense(3), inputs %>% layer_dense(3)),
                       name = "sum") %>%
    layer_dense(1)
  model <- keras_model(inputs, outputs)
  expect_error(compile(model, optimizer = "sgd", loss = "mse", device = "cuda"), "sum",
               class = "lcnn_error_device")
  model %>% compile(optimizer = "sgd", loss = "mse", device = "auto")
  expect_identical(model$compiled$device, "cpu")
})

test_that("a compile() for a GPU that cannot run the model leaves the model as it was", {
  local_device_state(fake_device_state())
  set.seed(12)
  inputs <- layer_input(shape = 4, name = "features")
  outputs <- layer_add(list(inputs %>% layer_dense(3), inputs %>% layer_dense(3)),
                       name = "sum") %>%
    layer_dense(1)
  model <- keras_model(inputs, outputs, name = "branching")
  model %>% compile(optimizer = optimizer_sgd(0.1), loss = "mse", device = "cpu")
  x <- matrix(runif(40), 10, 4)
  y <- runif(10)
  model %>% fit(x, y, epochs = 1, verbose = 0)
  compiled <- model$compiled
  trainer <- model$trainer
  expect_error(compile(model, optimizer = "adam", loss = "mae", metrics = "mse",
                       device = "cuda"),
               class = "lcnn_error_device")
  expect_identical(model$compiled, compiled)
  expect_identical(model$trainer, trainer)
  expect_identical(model$compiled$optimizer$name, "sgd")
  history <- model %>% fit(x, y, epochs = 1, verbose = 0)
  expect_named(history$metrics, "loss")
  # "auto" trains such a model on the CPU.
  model %>% compile(optimizer = "adam", loss = "mae", device = "auto")
  expect_identical(model$compiled$device, "cpu")
})
