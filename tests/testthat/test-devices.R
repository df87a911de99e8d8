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

test_that("the device resolver: cpu and auto give the CPU without asking CUDA", {
  not_queried <- function() stop("the CUDA state must not be queried")
  expect_identical(lcnn:::resolve_device("cpu", state = not_queried()), "cpu")
  expect_identical(lcnn:::resolve_device("auto", state = not_queried()), "cpu")
  expect_identical(lcnn:::resolve_device("CPU", state = not_queried()), "cpu")
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

test_that("device = 'cuda' with a GPU says this version computes on the CPU only", {
  two_gpus <- fake_device_state(names = c("NVIDIA H100 80GB HBM3", "NVIDIA H200"))
  expect_error(lcnn:::resolve_device("cuda", two_gpus), class = "lcnn_error_device")
  expect_snapshot(error = TRUE, lcnn:::resolve_device("cuda", two_gpus, call = NULL))
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
  # No engine kernel runs on a GPU yet, so "cuda" fails on every machine:
  # for want of CUDA in the build, of a device, or of GPU kernels.
  expect_error(compile(model, optimizer = "sgd", loss = "mse", device = "cuda"),
               class = "lcnn_error_device")
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

test_that("with a GPU, 'auto' still picks the CPU and 'cuda' is refused", {
  skip_if_no_cuda()
  model <- keras_model_sequential(input_shape = 3) %>% layer_dense(2)
  model %>% compile(optimizer = "sgd", loss = "mse", device = "auto")
  expect_identical(model$compiled$device, "cpu")
  expect_error(compile(model, optimizer = "sgd", loss = "mse", device = "cuda"),
               "computes on the CPU only", class = "lcnn_error_device")
})
