# Activations are computed by the engine; R only checks and normalizes names.

activation_names <- c(
  "linear", "relu", "sigmoid", "tanh", "softmax", "elu", "selu", "softplus",
  "softsign", "swish", "silu", "gelu", "hard_sigmoid", "exponential"
)

check_activation <- function(x, arg = rlang::caller_arg(x), call = rlang::caller_env()) {
  if (is.null(x)) return("linear")
  if (!is.character(x) || length(x) != 1 || is.na(x) || !(tolower(x) %in% activation_names)) {
    lcnn_abort(c("{.arg {arg}} must be NULL or the name of an activation.",
                 x = "Got {format_value(x)}.",
                 i = "Known activations: {.val {activation_names}}."),
               "argument", call = call)
  }
  name <- tolower(x)
  if (name == "silu") "swish" else name
}
