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
#' the CUDA runtime is linked in statically, so the same installation loads
#' and runs on the CPU on machines without a GPU or driver.
#'
#' This version computes on the CPU only: the GPU kernels are not
#' implemented yet, so [compile()] with `device = "auto"` picks the CPU
#' even when this is `TRUE`, and `device = "cuda"` is an error.
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

# The device compile() records for a request: "cpu", or an error of class
# lcnn_error_device saying what lacks a GPU. "auto" picks the CPU until the
# engine has GPU kernels (issue 6), so it does not query CUDA; `state` is
# only evaluated for "cuda" (tests pass made-up states).
resolve_device <- function(device, state = .cuda_device_state(), call = rlang::caller_env()) {
  device <- check_choice(device, c("auto", "cpu", "cuda"), arg = "device", call = call)
  if (device == "cuda") check_cuda_device(state, call)
  "cpu"
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
  lcnn_abort(c("{.code device = \"cuda\"} is not supported yet: this version of lcnn computes \\
                on the CPU only.",
               i = "Its GPU kernels are not implemented yet; this machine has \\
                    {.val {state$devices$name}}.",
               advice), "device", call = call)
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
