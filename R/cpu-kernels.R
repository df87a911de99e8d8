# Which compiled kernels run the engine's matrix products on the CPU.

#' CPU kernels for the engine's matrix products
#'
#' The engine's matrix products (the bulk of the work of locally connected,
#' convolution and dense layers) are compiled several times when lcnn is
#' installed: for the baseline instruction set of the build, and where the
#' compiler can, for AVX2 with FMA and for AVX-512. When it loads, lcnn uses
#' the widest set this CPU runs, so the package built with R's default,
#' portable flags already multiplies with the widest vectors the machine
#' has: no `-march=native` build is needed for the products. The environment
#' variable `LCNN_CPU_KERNELS`, read when the package loads, or a call
#' `lcnn_cpu_kernels("avx2")` choose another available set, for example to
#' compare them. Results agree between sets to float rounding.
#'
#' The optimizer's update and the elementwise losses (mean squared and
#' absolute error, Huber, binary crossentropy) are compiled with them, so
#' that they run on the same vectors.
#'
#' Installing with `LCNN_CPU_KERNELS_BUILD=baseline` in the environment
#' builds the portable kernels only. The rest of the engine (patch gathers,
#' activations, the categorical losses) is compiled with R's flags; a build
#' with `CXX17FLAGS = -O3 -march=native` in `~/.R/Makevars` speeds those up
#' a little further on the machine that builds it, but such a package may
#' not run on another CPU.
#'
#' @param kernels `NULL` to only report, or the name of one of the available
#'   sets (`"baseline"`, `"avx2"`, `"avx512"`) to use from now on.
#' @return A list: `in_use`, the set in use (after the change, if any), and
#'   `available`, the sets this build and CPU can run, narrowest first;
#'   invisibly when `kernels` is given.
#' @family configuration
#' @export
#' @examples
#' lcnn_cpu_kernels()
#' old <- lcnn_cpu_kernels()$in_use
#' lcnn_cpu_kernels("baseline")
#' lcnn_cpu_kernels(old)
lcnn_cpu_kernels <- function(kernels = NULL) {
  if (is.null(kernels)) return(.cpu_kernels())
  .use_cpu_kernels(check_cpu_kernels(kernels, .cpu_kernels()$available))
  invisible(.cpu_kernels())
}

check_cpu_kernels <- function(kernels, available, call = rlang::caller_env()) {
  check_choice(kernels, available, arg = "kernels", call = call)
}

# Applies LCNN_CPU_KERNELS when the package loads. A name this build or CPU
# cannot run is reported with a warning, since an error would stop
# library(lcnn); the widest available set stays in use.
use_cpu_kernels_from_environment <- function(available = .cpu_kernels()$available) {
  requested <- Sys.getenv("LCNN_CPU_KERNELS", unset = "")
  if (!nzchar(requested)) return(invisible())
  if (!requested %in% available) {
    cli::cli_warn(c(
      "{.envvar LCNN_CPU_KERNELS} must name CPU kernels this build and CPU can run.",
      x = "It is {format_value(requested)}.",
      i = "Available: {.val {available}}; using {.val {available[length(available)]}}."
    ), class = c("lcnn_warning_argument", "lcnn_warning"))
    return(invisible())
  }
  .use_cpu_kernels(requested)
}

.onLoad <- function(libname, pkgname) {
  use_cpu_kernels_from_environment()
}
