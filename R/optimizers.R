# Optimizers: specs in R with Keras 2.11+ defaults, updates in the engine.

new_optimizer <- function(name, learning_rate, ..., call = rlang::caller_env()) {
  defaults <- list(learning_rate = 0.01, momentum = 0, nesterov = FALSE, beta_1 = 0.9,
                   beta_2 = 0.999, amsgrad = FALSE, rho = 0.9, centered = FALSE,
                   initial_accumulator_value = 0.1, epsilon = 1e-7)
  given <- list(...)
  spec <- utils::modifyList(defaults, given)
  spec$learning_rate <- check_number(learning_rate, arg = "learning_rate", positive = TRUE,
                                     call = call)
  for (arg in c("momentum", "initial_accumulator_value")) {
    if (spec[[arg]] < 0) {
      lcnn_abort(c("{.arg {arg}} must be >= 0.", x = "Got {spec[[arg]]}."), "argument",
                 call = call)
    }
  }
  for (arg in c("beta_1", "beta_2", "rho")) {
    if (spec[[arg]] < 0 || spec[[arg]] >= 1) {
      lcnn_abort(c("{.arg {arg}} must be in [0, 1).", x = "Got {spec[[arg]]}."), "argument",
                 call = call)
    }
  }
  spec$name <- name
  structure(spec, given = names(given), class = "lcnn_optimizer")
}

# learning_rate, or the deprecated `lr` with a warning, as keras 2.
resolve_learning_rate <- function(learning_rate, lr, call) {
  if (is.null(lr)) return(learning_rate)
  cli::cli_warn(c("{.arg lr} is deprecated; use {.arg learning_rate}."),
                class = c("lcnn_warning_deprecated", "lcnn_warning"), call = call)
  lr
}

#' Optimizers
#'
#' The optimizers of Keras 2 (2.11 and later), with their names, arguments,
#' defaults and update rules. Pass one to [compile()], or its name
#' (`"sgd"`, `"adam"`, `"rmsprop"`, `"adagrad"`) for the defaults.
#'
#' @param learning_rate Step size, > 0.
#' @param lr Deprecated name of `learning_rate` (warns).
#' @param ... Unused.
#' @return An `lcnn_optimizer` object.
#' @family training
#' @name optimizers
#' @examples
#' optimizer_adam(learning_rate = 1e-3, amsgrad = TRUE)
#' optimizer_sgd(momentum = 0.9, nesterov = TRUE)
NULL

#' @rdname optimizers
#' @param momentum Momentum (>= 0); 0 turns it off.
#' @param nesterov Whether to use Nesterov momentum.
#' @export
optimizer_sgd <- function(learning_rate = 0.01, momentum = 0, nesterov = FALSE, lr = NULL,
                          ...) {
  call <- rlang::current_env()
  learning_rate <- resolve_learning_rate(learning_rate, lr, call)
  new_optimizer("sgd", learning_rate, momentum = check_number(momentum, call = call),
                nesterov = check_flag(nesterov, call = call), call = call)
}

#' @rdname optimizers
#' @param beta_1,beta_2 Decay rates of the first and second moment estimates.
#' @param epsilon Small constant for numerical stability.
#' @param amsgrad Whether to use the AMSGrad variant.
#' @export
optimizer_adam <- function(learning_rate = 0.001, beta_1 = 0.9, beta_2 = 0.999,
                           epsilon = 1e-07, amsgrad = FALSE, lr = NULL, ...) {
  call <- rlang::current_env()
  learning_rate <- resolve_learning_rate(learning_rate, lr, call)
  new_optimizer("adam", learning_rate, beta_1 = check_number(beta_1, call = call),
                beta_2 = check_number(beta_2, call = call),
                epsilon = check_number(epsilon, positive = TRUE, call = call),
                amsgrad = check_flag(amsgrad, call = call), call = call)
}

#' @rdname optimizers
#' @param rho Decay rate of the moving average of squared gradients.
#' @param centered Whether to normalize by the variance of the gradient.
#' @export
optimizer_rmsprop <- function(learning_rate = 0.001, rho = 0.9, momentum = 0,
                              epsilon = 1e-07, centered = FALSE, lr = NULL, ...) {
  call <- rlang::current_env()
  learning_rate <- resolve_learning_rate(learning_rate, lr, call)
  new_optimizer("rmsprop", learning_rate, rho = check_number(rho, call = call),
                momentum = check_number(momentum, call = call),
                epsilon = check_number(epsilon, positive = TRUE, call = call),
                centered = check_flag(centered, call = call), call = call)
}

#' @rdname optimizers
#' @param initial_accumulator_value Starting value of the accumulators.
#' @export
optimizer_adagrad <- function(learning_rate = 0.001, initial_accumulator_value = 0.1,
                              epsilon = 1e-07, lr = NULL, ...) {
  call <- rlang::current_env()
  learning_rate <- resolve_learning_rate(learning_rate, lr, call)
  new_optimizer("adagrad", learning_rate,
                initial_accumulator_value = check_number(initial_accumulator_value, call = call),
                epsilon = check_number(epsilon, positive = TRUE, call = call), call = call)
}

optimizer_by_name <- list(sgd = optimizer_sgd, adam = optimizer_adam,
                          rmsprop = optimizer_rmsprop, adagrad = optimizer_adagrad)

check_optimizer <- function(x, arg = rlang::caller_arg(x), call = rlang::caller_env()) {
  object_or_name(x, "lcnn_optimizer", optimizer_by_name,
                 "an optimizer name or an `optimizer_*()` object", arg, call)
}

#' @export
print.lcnn_optimizer <- function(x, ...) {
  shown <- c("learning_rate", attr(x, "given"))
  values <- vapply(unclass(x)[unique(shown)], deparse_short, character(1))
  cat("<optimizer: ", x$name, "(", paste(names(values), values, sep = " = ", collapse = ", "),
      ")>\n", sep = "")
  invisible(x)
}
