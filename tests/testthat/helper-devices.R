# Tests that need a usable CUDA GPU (lcnn built with CUDA, a driver and a
# device) skip without one.
skip_if_no_cuda <- function() {
  if (!lcnn_cuda_available()) testthat::skip("no usable CUDA device")
}

# A device state as .cuda_device_state() returns it, for the resolver's
# branches this machine cannot show.
fake_device_state <- function(built = TRUE, availability = "available", detail = "",
                              runtime_version = 13000, driver_version = 13000,
                              names = if (availability == "available") "NVIDIA H100 80GB HBM3") {
  n <- length(names)
  list(built = built, availability = availability, detail = detail,
       runtime_version = runtime_version, driver_version = driver_version,
       devices = list(index = seq_len(n) - 1L, name = as.character(names),
                      memory = rep(85e9, n), major = rep(9L, n), minor = rep(0L, n)))
}

# Makes lcnn's .cuda_device_state() return `state` until the calling test
# ends, so that compile() and fit() meet a GPU this machine may lack (this
# testthat predates local_mocked_bindings()).
local_device_state <- function(state, env = parent.frame()) {
  original <- lcnn:::.cuda_device_state
  utils::assignInNamespace(".cuda_device_state", function() state, "lcnn")
  withr::defer(utils::assignInNamespace(".cuda_device_state", original, "lcnn"), envir = env)
}
