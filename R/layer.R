# The generic layer machinery: layer objects, automatic names, composition
# (layer_*(object, ...) with a missing object, a model or an array), and the
# two-step build (plan, then commit) that keeps failed calls from changing
# anything.
#
# A layer is an environment (reference semantics, as in Keras) of class
# c("lcnn_layer_<kind>", "lcnn_layer") holding:
#   name, type (the Keras class name), config (checked arguments),
#   input (list(shape, batch) from input_shape/batch_input_shape),
#   dtype (NULL until a model or input decides), trainable,
#   initial_weights (the `weights =` argument, applied when built),
#   built, state (what building computed: input_shape, output_shape and the
#   kind's own fields), weights (list of lcnn-layout numeric vectors),
#   version (changes whenever the weights change).
# Each kind provides these methods: layer_plan() (the state that building for
# an input shape gives, computed without touching the layer),
# layer_initial_weights(), layer_keras_weights(), layer_import_weights() and
# layer_engine_spec().

session <- new.env(parent = emptyenv())
session$name_counts <- list()
session$version <- 0

next_version <- function() {
  session$version <- session$version + 1
  session$version
}

# Keras's automatic names: "prefix", then "prefix_1", "prefix_2", ...
unique_name <- function(prefix) {
  count <- session$name_counts[[prefix]]
  session$name_counts[[prefix]] <- if (is.null(count)) 1L else count + 1L
  if (is.null(count)) prefix else paste0(prefix, "_", count)
}

#' Reset the automatic layer and model names
#'
#' After this, the next 2D locally connected layer is called
#' `"locally_connected2d"` again and the next model `"sequential"`, as after
#' `k_clear_session()` in Keras.
#'
#' @return `NULL`, invisibly.
#' @family configuration
#' @export
#' @examples
#' k_clear_session()
k_clear_session <- function() {
  session$name_counts <- list()
  invisible(NULL)
}

# A layer object from its kind's checked `config` and the arguments every
# layer takes (name, trainable, dtype, input_shape, batch_input_shape,
# batch_size, weights), read from `args`.
new_layer <- function(kind, type, name_prefix, config, args, call = rlang::caller_env()) {
  if (!is.null(args$weights) && !is.list(args$weights)) {
    lcnn_abort(c("{.arg weights} must be NULL or a list of arrays.",
                 x = "Got {format_value(args$weights)}."),
               "argument", call = call)
  }
  layer <- new.env(parent = emptyenv())
  layer$type <- type
  layer$config <- config
  layer$name <- check_name(args$name, arg = "name", call = call) %||% unique_name(name_prefix)
  layer$trainable <- if (is.null(args$trainable)) TRUE else
    check_flag(args$trainable, arg = "trainable", call = call)
  layer$dtype <- check_dtype(args$dtype, arg = "dtype", call = call)
  layer$input <- check_input_spec(args$input_shape, args$batch_input_shape, args$batch_size,
                                  call = call)
  layer$initial_weights <- args$weights
  layer$built <- FALSE
  layer$state <- NULL
  layer$weights <- NULL
  layer$version <- next_version()
  class(layer) <- c(paste0("lcnn_layer_", kind), "lcnn_layer")
  layer
}

# The arguments shared by layers with a kernel and a bias, checked.
check_weighted_layer_arguments <- function(args, call) {
  checked <- list(
    activation = check_activation(args$activation, arg = "activation", call = call),
    use_bias = check_flag(args$use_bias, arg = "use_bias", call = call)
  )
  for (w in c("kernel", "bias")) {
    arg <- paste0(w, "_initializer")
    checked[[arg]] <- check_initializer(args[[arg]], arg = arg, call = call)
  }
  for (arg in c("kernel_regularizer", "bias_regularizer", "activity_regularizer")) {
    checked[arg] <- list(check_regularizer(args[[arg]], arg = arg, call = call))
  }
  for (arg in c("kernel_constraint", "bias_constraint")) {
    checked[arg] <- list(check_constraint(args[[arg]], arg = arg, call = call))
  }
  checked
}

# The common body of the layer_*() functions. `env` is the function's
# environment (its arguments); `constructor(args, call)` makes the layer.
# Returns the layer, or composes it with `object` when one was given.
layer_from_arguments <- function(env, required, constructor, call = rlang::caller_env()) {
  is_missing <- function(arg) eval(call("missing", as.name(arg)), env)
  for (arg in required) {
    if (is_missing(arg)) lcnn_abort("{.arg {arg}} is required.", "argument", call = call)
  }
  object_missing <- is_missing("object")
  args <- as.list(env)
  args$object <- NULL
  layer <- constructor(args, call)
  if (object_missing) return(layer)
  compose_layer(env$object, layer, call = call)
}

layer_plan <- function(layer, input_shape, call) UseMethod("layer_plan")

# For layer_plan() methods: a shape error unless the input has `dims`
# dimensions per sample.
check_input_rank <- function(layer, input_shape, dims, call) {
  if (length(input_shape) != dims) {
    lcnn_abort(c("Layer {.val {layer$name}} ({layer$type}) needs input with \\
                  {dims} dimensions per sample.",
                 x = "Got input {format_shape(input_shape)}."),
               "shape", call = call)
  }
}

# Weights drawn from the layer's initializers, in lcnn's layout.
layer_initial_weights <- function(layer, state, dtype) UseMethod("layer_initial_weights")
layer_keras_weights <- function(layer) UseMethod("layer_keras_weights")
# Checks Keras-layout weights against the layer and converts them to lcnn's
# layout; raises lcnn_error_shape naming `arg` on a mismatch, counting the
# layer's weights from `offset + 1` (their place in a model's list).
layer_import_weights <- function(layer, weights, state, dtype, arg, call, offset = 0) {
  UseMethod("layer_import_weights")
}
layer_engine_spec <- function(layer) UseMethod("layer_engine_spec")
# A Keras-layout array of weight `weight` in lcnn's layout (0 where lcnn's
# layout has an entry Keras's has not).
layer_engine_layout <- function(layer, weight, keras) UseMethod("layer_engine_layout")

# Builds `layer` for per-sample input shape `input_shape`, returning the plan
# that layer_commit() applies. A layer already built must get the same shape.
plan_build <- function(layer, input_shape, dtype, call) {
  if (layer$built) {
    if (!identical(layer$state$input_shape, as.integer(input_shape))) {
      lcnn_abort(c("Layer {.val {layer$name}} was built for input {format_shape(layer$state$input_shape)} \\
                    and cannot take input {format_shape(input_shape)}."),
                 "shape", call = call)
    }
    return(NULL)
  }
  declared <- layer$input$shape
  if (!is.null(declared) && !identical(declared, as.integer(input_shape))) {
    lcnn_abort(c("Layer {.val {layer$name}} declares {.arg input_shape} {format_shape(declared)} \\
                  but receives input {format_shape(input_shape)}."),
               "shape", call = call)
  }
  dtype <- layer$dtype %||% dtype
  state <- layer_plan(layer, as.integer(input_shape), call)
  check_constraint_axes(layer, state$keras_shapes, call)
  weights <- if (is.null(layer$initial_weights)) {
    layer_initial_weights(layer, state, dtype)
  } else {
    layer_import_weights(layer, layer$initial_weights, state, dtype, arg = "weights",
                         call = call)
  }
  list(state = state, weights = weights, dtype = dtype)
}

layer_commit <- function(layer, plan) {
  if (is.null(plan)) return(invisible(layer))
  layer$state <- plan$state
  layer$weights <- plan$weights
  layer$dtype <- plan$dtype
  layer$initial_weights <- NULL
  layer$built <- TRUE
  layer$version <- next_version()
  invisible(layer)
}

# What layer_*() returns: the layer itself, the model it was added to, or
# the layer applied to an array.
compose_layer <- function(object, layer, call = rlang::caller_env()) {
  if (inherits(object, "lcnn_sequential")) {
    sequential_add(object, layer, call = call)
    return(invisible(object))
  }
  if (is.numeric(object) || is.logical(object)) {
    return(apply_layer_to_array(layer, object, call = call))
  }
  lcnn_abort(c("{.arg object} must be missing, a sequential model or a numeric array.",
               x = "Got {format_value(object)}."),
             "argument", call = call)
}

# Eager use: build the layer for the array's shape if needed and run it.
apply_layer_to_array <- function(layer, x, call) {
  x <- check_input_array(x, expected = layer$state$input_shape, call = call)
  dims <- dim(x)
  layer_commit(layer, plan_build(layer, dims[-1], layer$dtype %||% "float32", call))
  run_network(list(layer), layer$dtype, x, batch_size = max(1L, dims[1]))
}

layer_output_shape <- function(layer) {
  if (!layer$built) return(NULL)
  c(list(layer$input$batch), as.list(layer$state$output_shape))
}

layer_param_count <- function(layer) {
  if (!layer$built) return(0)
  sum(vapply(layer$state$keras_shapes, function(d) prod(as.numeric(d)), numeric(1)))
}

layer_fields <- c("name", "type", "built", "trainable", "dtype", "input_shape",
                  "output_shape", "config", "get_weights", "set_weights", "count_params")

#' @export
`$.lcnn_layer` <- function(x, name) {
  switch(name,
    input_shape = if (x[["built"]]) c(list(x[["input"]]$batch), as.list(x[["state"]]$input_shape)),
    output_shape = layer_output_shape(x),
    get_weights = function() get_weights(x),
    set_weights = function(weights) set_weights(x, weights),
    count_params = function() count_params(x),
    get0(name, envir = x, inherits = FALSE)
  )
}

#' @export
`$<-.lcnn_layer` <- function(x, name, value) {
  if (identical(name, "trainable")) value <- check_flag(value, arg = "trainable")
  assign(name, value, envir = x)
  x
}

#' @export
.DollarNames.lcnn_layer <- function(x, pattern = "") {
  grep(pattern, layer_fields, value = TRUE)
}

#' @export
print.lcnn_layer <- function(x, ...) {
  cat("<", x[["type"]], "> ", x[["name"]], "\n", sep = "")
  if (x[["built"]]) {
    cat("  output shape: ", format_shape(x[["state"]]$output_shape, x[["input"]]$batch), "\n",
        "  parameters:   ", format_count(layer_param_count(x)), "\n", sep = "")
  } else {
    cat("  not built yet (its input shape is not known)\n")
  }
  invisible(x)
}

format_count <- function(n) format(n, big.mark = ",", scientific = FALSE, trim = TRUE)
