# Optimizers: specs in R with Keras 2.11+ defaults, updates in the engine.

new_optimizer <- function(name, learning_rate, ..., call = rlang::caller_env()) {
  defaults <- list(learning_rate = 0.01, momentum = 0, nesterov = FALSE, beta_1 = 0.9,
                   beta_2 = 0.999, amsgrad = FALSE, rho = 0.9, centered = FALSE,
                   initial_accumulator_value = 0.1, epsilon = 1e-7)
  given <- list(...)
  spec <- utils::modifyList(defaults, given)
  spec$learning_rate <- learning_rate
  spec$name <- name
  check_optimizer_fields(structure(spec, given = names(given), class = "lcnn_optimizer"),
                         call = call)
}

# An optimizer's fields checked and normalized: by its constructor, and by
# compile() for an object whose fields may have been changed since, which
# names them after `prefix` ("optimizer$learning_rate").
# Ranges: momentum in [0, 1], as Keras 2's SGD (a momentum above 1 makes
# every step larger than the last); the decay rates in [0, 1), since their
# powers divide Adam's steps by 1 - beta ^ t, and a decay of 1 never forgets.
check_optimizer_fields <- function(spec, call, prefix = "") {
  label <- function(field) paste0(prefix, field)
  if (!(is.character(spec$name) && length(spec$name) == 1 &&
        spec$name %in% names(optimizer_by_name))) {
    lcnn_abort(c("{.arg {label('name')}} must be one of {.val {names(optimizer_by_name)}}.",
                 x = "Got {format_value(spec$name)}."), "argument", call = call)
  }
  for (field in c("learning_rate", "epsilon")) {
    spec[[field]] <- check_number(spec[[field]], arg = label(field), positive = TRUE,
                                  call = call)
  }
  spec$momentum <- check_number(spec$momentum, arg = label("momentum"), min = 0, max = 1,
                                call = call)
  for (field in c("beta_1", "beta_2", "rho")) {
    spec[[field]] <- check_number(spec[[field]], arg = label(field), min = 0, below = 1,
                                  call = call)
  }
  spec$initial_accumulator_value <- check_number(spec$initial_accumulator_value,
                                                 arg = label("initial_accumulator_value"),
                                                 min = 0, call = call)
  for (field in c("nesterov", "amsgrad", "centered")) {
    spec[[field]] <- check_flag(spec[[field]], arg = label(field), call = call)
  }
  spec
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
#' [compile()] checks an object's values again, so one whose fields were
#' changed (`o$learning_rate <- 0.1`) must still hold values in range.
#'
#' @param learning_rate Step size, > 0.
#' @param lr Deprecated name of `learning_rate` (warns).
#' @param ... Must be empty. Keras arguments that lcnn does not implement
#'   (`clipnorm`, `clipvalue`, `weight_decay`, ...) are refused rather than
#'   ignored, so that training is what the call says.
#' @return An `lcnn_optimizer` object.
#' @family training
#' @name optimizers
#' @examples
#' optimizer_adam(learning_rate = 1e-3, amsgrad = TRUE)
#' optimizer_sgd(momentum = 0.9, nesterov = TRUE)
NULL

#' @rdname optimizers
#' @param momentum Momentum, in `[0, 1]`; 0 turns it off.
#' @param nesterov Whether to use Nesterov momentum.
#' @export
optimizer_sgd <- function(learning_rate = 0.01, momentum = 0, nesterov = FALSE, lr = NULL,
                          ...) {
  call <- rlang::current_env()
  check_dots_empty(..., call = call)
  learning_rate <- resolve_learning_rate(learning_rate, lr, call)
  new_optimizer("sgd", learning_rate, momentum = momentum, nesterov = nesterov, call = call)
}

#' @rdname optimizers
#' @param beta_1,beta_2 Decay rates of the first and second moment estimates,
#'   in `[0, 1)`.
#' @param epsilon Small constant for numerical stability, > 0.
#' @param amsgrad Whether to use the AMSGrad variant.
#' @export
optimizer_adam <- function(learning_rate = 0.001, beta_1 = 0.9, beta_2 = 0.999,
                           epsilon = 1e-07, amsgrad = FALSE, lr = NULL, ...) {
  call <- rlang::current_env()
  check_dots_empty(..., call = call)
  learning_rate <- resolve_learning_rate(learning_rate, lr, call)
  new_optimizer("adam", learning_rate, beta_1 = beta_1, beta_2 = beta_2, epsilon = epsilon,
                amsgrad = amsgrad, call = call)
}

#' @rdname optimizers
#' @param rho Decay rate of the moving average of squared gradients, in
#'   `[0, 1)`.
#' @param centered Whether to normalize by the variance of the gradient.
#' @export
optimizer_rmsprop <- function(learning_rate = 0.001, rho = 0.9, momentum = 0,
                              epsilon = 1e-07, centered = FALSE, lr = NULL, ...) {
  call <- rlang::current_env()
  check_dots_empty(..., call = call)
  learning_rate <- resolve_learning_rate(learning_rate, lr, call)
  new_optimizer("rmsprop", learning_rate, rho = rho, momentum = momentum, epsilon = epsilon,
                centered = centered, call = call)
}

#' @rdname optimizers
#' @param initial_accumulator_value Starting value of the accumulators, >= 0.
#' @export
optimizer_adagrad <- function(learning_rate = 0.001, initial_accumulator_value = 0.1,
                              epsilon = 1e-07, lr = NULL, ...) {
  call <- rlang::current_env()
  check_dots_empty(..., call = call)
  learning_rate <- resolve_learning_rate(learning_rate, lr, call)
  new_optimizer("adagrad", learning_rate, initial_accumulator_value = initial_accumulator_value,
                epsilon = epsilon, call = call)
}

optimizer_by_name <- list(sgd = optimizer_sgd, adam = optimizer_adam,
                          rmsprop = optimizer_rmsprop, adagrad = optimizer_adagrad)

# An optimizer object's fields are checked again: they may have been changed
# since its constructor checked them (`o$learning_rate <- -1`).
check_optimizer <- function(x, arg = rlang::caller_arg(x), call = rlang::caller_env()) {
  optimizer <- object_or_name(x, "lcnn_optimizer", optimizer_by_name,
                              "an optimizer name or an `optimizer_*()` object", arg, call)
  check_optimizer_fields(optimizer, call, prefix = paste0(arg, "$"))
}

#' @export
print.lcnn_optimizer <- function(x, ...) {
  shown <- c("learning_rate", attr(x, "given"))
  values <- vapply(unclass(x)[unique(shown)], deparse_short, character(1))
  cat("<optimizer: ", x$name, "(", paste(names(values), values, sep = " = ", collapse = ", "),
      ")>\n", sep = "")
  invisible(x)
}
