# Classed errors. Every error lcnn raises has class "lcnn_error" and a
# subclass saying what went wrong:
# - lcnn_error_argument: an argument has the wrong type, length or value;
# - lcnn_error_shape: shapes do not fit (input, output size, weights);
# - lcnn_error_state: the object is not in a state that allows the call;
# - lcnn_error_data: a data set cannot be found or read;
# - lcnn_error_device: the requested device cannot be used (the build or the
#   machine lacks it).

lcnn_abort <- function(message, class, ..., call = rlang::caller_env(),
                       .envir = parent.frame()) {
  cli::cli_abort(
    message,
    class = c(paste0("lcnn_error_", class), "lcnn_error"),
    ...,
    call = call,
    .envir = .envir
  )
}

# A short rendering of a value for error messages: R syntax in backticks for
# small values, a description for large or complex ones.
format_value <- function(x) {
  if (is.null(x)) return("`NULL`")
  if (inherits(x, "lcnn_tensor")) {
    return(paste0("a symbolic tensor of shape ", format_shape(x$shape, x$batch)))
  }
  if (is.object(x) && (is.function(x) || is.environment(x))) {
    return(paste0("an object of class <", class(x)[1], ">"))
  }
  if (is.function(x)) return("a function")
  if (is.environment(x)) return(paste0("an object of class <", class(x)[1], ">"))
  if (is.array(x) || (is.atomic(x) && length(x) > 6)) {
    dims <- if (is.null(dim(x))) length(x) else dim(x)
    return(paste0("a ", typeof(x), " ", if (is.null(dim(x))) "vector" else "array",
                  " of shape (", paste(dims, collapse = ", "), ")"))
  }
  if (is.list(x) && length(x) > 2) {
    return(paste0("a list of length ", length(x)))
  }
  text <- deparse_short(x)
  if (nchar(text) > 60) text <- paste0(substr(text, 1, 57), "...")
  paste0("`", text, "`")
}

# R syntax for a small value, integers written without the L suffix.
deparse_short <- function(x) {
  if (is.integer(x)) x <- as.numeric(x)
  paste(deparse(x, width.cutoff = 60L), collapse = " ")
}

# "(NULL, 30, 30, 64)": a Keras shape with an unknown batch, as R users see it.
format_shape <- function(dims, batch = NULL) {
  batch <- if (is.null(batch)) "NULL" else as.character(batch)
  paste0("(", paste(c(batch, dims), collapse = ", "), ")")
}

# The default methods of lcnn's own generics (evaluate(), get_weights(), ...):
# `object` is none of lcnn's, which base R would report as "no applicable
# method".
abort_not_lcnn <- function(object, what, call = rlang::caller_env()) {
  lcnn_abort(c("{.arg object} must be {what}.", x = "Got {format_value(object)}."),
             "argument", call = call)
}
