# CUDA devices: what the build and the machine offer, and the device
# compile() resolves. The state comes from the engine's one CUDA boundary
# (src/cuda/device.hpp) through .cuda_device_state(): `built`,
# `availability` ("available", "not_built", "no_driver", "no_device",
# "error"), `detail`, the runtime's and driver's CUDA versions and the
# devices' columns.

#' Whether a CUDA GPU can be used
#'
#' `TRUE` when this installation of lcnn was built with CUDA and the machine
#' has a usable NVIDIA GPU (a driver and at least one device, as
#' `CUDA_VISIBLE_DEVICES` leaves them). lcnn is built with CUDA when
#' installed from source where the CUDA toolkit is found (see the README);
#' the CUDA runtime is linked in statically and cuBLAS is opened when first
#' used, so the same installation loads and runs on the CPU on machines
#' without a GPU or driver.
#'
#' When it is `TRUE`, [compile()] with `device = "auto"` (the default)
#' trains float32 models on the GPU if the GPU can run them (see
#' [compile()] for what runs there), and `device = "cuda"` asks for it.
#'
#' @return `TRUE` or `FALSE`.
#' @family configuration
#' @seealso [lcnn_devices()] for the devices themselves.
#' @export
#' @examples
#' lcnn_cuda_available()
lcnn_cuda_available <- function() {
  state <- .cuda_device_state()
  state$built && state$availability == "available"
}

#' CUDA devices
#'
#' The NVIDIA GPUs this installation of lcnn can use: none when it was
#' built without CUDA or the machine has no driver or device.
#'
#' @return A data frame with one row per device: `index`, the CUDA device
#'   ordinal (from 0, as `nvidia-smi` and `CUDA_VISIBLE_DEVICES` number
#'   them); `name`; `memory`, the total memory in bytes; and
#'   `compute_capability`, such as `"9.0"`. Zero rows when there is none;
#'   `compile(device = "cuda")` then says why.
#' @family configuration
#' @seealso [lcnn_cuda_available()].
#' @export
#' @examples
#' lcnn_devices()
lcnn_devices <- function() {
  devices <- .cuda_device_state()$devices
  data.frame(index = devices$index, name = devices$name, memory = devices$memory,
             compute_capability = sprintf("%d.%d", devices$major, devices$minor),
             stringsAsFactors = FALSE)
}

# The device compile() records for a request: "cpu" or "cuda", or an error
# of class lcnn_error_device saying what lacks a GPU. "auto" is "cuda" when
# a GPU is usable and the model is float32 (whether the GPU runs its layers
# is checked once they are known, see device_for_model()). "cpu" does not
# query CUDA; tests pass made-up states.
resolve_device <- function(device, state = .cuda_device_state(), dtype = "float32",
                           call = rlang::caller_env()) {
  device <- check_choice(device, c("auto", "cpu", "cuda"), arg = "device", call = call)
  if (device == "cpu") return("cpu")
  if (device == "cuda") {
    check_cuda_device(state, call)
    if (dtype != "float32") {
      lcnn_abort(c("{.code device = \"cuda\"} needs a float32 model.",
                   x = "This model computes in {.val {dtype}}; lcnn's GPU kernels are \\
                        float32 only.",
                   i = "Use {.code dtype = \"float32\"} (the default) or \\
                        {.code device = \"cpu\"}."), "device", call = call)
    }
    return("cuda")
  }
  if (state$built && state$availability == "available" && dtype == "float32") "cuda" else "cpu"
}

# The device a model's trainer runs on, once its graph is known: the
# compiled device, unless the GPU cannot run the model. Then a request for
# "cuda" is an error of class lcnn_error_device naming the layer at fault,
# and "auto" gives the CPU. `compiled` is the model's, or the one compile()
# is about to give it.
device_for_model <- function(model, graph, state = .cuda_device_state(),
                             call = rlang::caller_env(), compiled = model$compiled) {
  if ((compiled$device %||% "cpu") != "cuda") return("cpu")
  # The model may come from saveRDS() on another machine.
  if (!(state$built && state$availability == "available")) {
    if (identical(compiled$requested_device, "cuda")) check_cuda_device(state, call)
    return("cpu")
  }
  support <- .device_support(network_spec(graph), lcnn_num_threads())
  if (support$supported) return("cuda")
  if (!identical(compiled$requested_device, "cuda")) return("cpu")
  layer <- if (!is.na(support$layer)) graph$layers[[support$layer]]
  lcnn_abort(c("{.code device = \"cuda\"} cannot run model {.val {model$name}}.",
               x = if (is.null(layer)) "{support$reason}." else
                 "Layer {.val {layer$name}} ({layer_type_name(layer)}): {support$reason}.",
               i = "Use {.code device = \"cpu\"}, or {.code device = \"auto\"} to run such \\
                    models on the CPU."), "device", call = call)
}

check_cuda_device <- function(state, call) {
  advice <- c(i = "Use {.code device = \"cpu\"} or {.code device = \"auto\"}.")
  if (!state$built) {
    lcnn_abort(c("{.code device = \"cuda\"} needs a GPU, but this build of lcnn has no CUDA.",
                 x = "lcnn was installed without CUDA (no working {.file nvcc} was found, or \\
                      {.envvar LCNN_CUDA} was 0).",
                 i = "Reinstall it from source where the CUDA toolkit is installed \\
                      ({.file nvcc} in {.envvar CUDA_HOME}, on the {.envvar PATH} or in \\
                      {.file /usr/local/cuda}); {.envvar LCNN_CUDA} = 1 makes a missing \\
                      toolkit an installation error.",
                 advice), "device", call = call)
  }
  if (state$availability != "available") {
    reason <- switch(state$availability,
                     no_driver = "No NVIDIA driver is installed.",
                     no_device = "The driver finds no CUDA device (see also \\
                                  {.envvar CUDA_VISIBLE_DEVICES}).",
                     "CUDA reports: {state$detail}.")
    versions <- if (state$driver_version > 0) {
      c(i = "lcnn uses CUDA {cuda_version(state$runtime_version)}; the driver supports CUDA \\
             up to {cuda_version(state$driver_version)}.")
    }
    lcnn_abort(c("{.code device = \"cuda\"} needs a GPU, but this machine has none lcnn can use.",
                 x = reason, versions, advice), "device", call = call)
  }
  invisible(state)
}

# "13.0" from CUDA's 13000.
cuda_version <- function(version) {
  paste0(version %/% 1000, ".", version %% 1000 %/% 10)
}

# The device a model computes on: models compiled before compile() had a
# `device` ran on the CPU.
model_device <- function(model) {
  model$compiled$device %||% "cpu"
}
