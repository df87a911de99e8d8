# The generic layer machinery: layer objects, automatic names, composition
# (layer_*(object, ...) with a missing object, a model or an array), and the
# two-step build (plan, then commit) that keeps failed calls from changing
# anything.
#
# A layer is a function (calling it applies the layer, as in R keras) of
# class c("lcnn_layer_<kind>", "lcnn_layer") whose environment holds its
# fields (reference semantics, as in Keras); read and set them with `$`:
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

# Keras's automatic names: "prefix", then "prefix_1", "prefix_2", ...; or
# from "prefix_1" on with `first = 1` (keras's inputs).
unique_name <- function(prefix, first = 0L) {
  count <- session$name_counts[[prefix]] %||% first
  session$name_counts[[prefix]] <- count + 1L
  if (count == 0L) prefix else paste0(prefix, "_", count)
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
  layer <- new_callable(c(paste0("lcnn_layer_", kind), "lcnn_layer"))
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
  layer
}

# A function of class `class` whose environment holds the object's fields.
# Calling it applies the object (a layer or a model) to its argument, as
# layer_*(object) does. The environment's parent is the package namespace
# so that the call finds compose_layer().
new_callable <- function(class) {
  object <- function(object, ...) {
    self <- sys.function()
    extra <- ...length()
    if (extra) {
      lcnn_abort(c("{.val {self$name}} takes one argument: its input.",
                   x = "Got {extra} more."), "argument")
    }
    compose_layer(object, self)
  }
  environment(object) <- new.env(parent = topenv())
  structure(object, class = class)
}

fields_of <- function(x) environment(x)

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

# For layer_plan() methods that add or multiply sizes (padding, flatten,
# concatenate): `output_shape` (doubles) as integers, or a shape error when
# an axis passes R's largest integer, which as.integer() would make NA.
checked_output_shape <- function(layer, input_shape, output_shape, call) {
  if (any(output_shape > .Machine$integer.max)) {
    largest <- .Machine$integer.max
    lcnn_abort(c("Layer {.val {layer$name}} ({layer$type}) cannot take input \\
                  {format_shapes(input_shape)}.",
                 x = "Its output {format_shape(output_shape)} would pass R's largest \\
                      integer, {largest}, along an axis."),
               "shape", call = call)
  }
  as.integer(output_shape)
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
# Per weight, in the order of `layer$weights`, whether the optimizer trains
# it: all of them when the layer is trainable, unless the kind keeps some
# weights out of training (batch normalization's moving statistics).
layer_weight_trainable <- function(layer) UseMethod("layer_weight_trainable")

#' @export
layer_weight_trainable.lcnn_layer <- function(layer) rep(layer$trainable, length(layer$weights))

# Builds `layer` for per-sample input shape `input_shape` (a list of them
# for layers that merge several inputs), returning the plan that
# layer_commit() applies. A layer already built must get the same shape.
plan_build <- function(layer, input_shape, dtype, call) {
  input_shape <- as_shape(input_shape)
  if (inherits(layer, "lcnn_model")) return(plan_model_call(layer, input_shape, call))
  if (layer$built) {
    if (!identical(layer$state$input_shape, input_shape)) {
      lcnn_abort(c("Layer {.val {layer$name}} was built for input \
                    {format_shapes(layer$state$input_shape)} and cannot take input \
                    {format_shapes(input_shape)}."),
                 "shape", call = call)
    }
    return(NULL)
  }
  declared <- layer$input$shape
  if (!is.null(declared) && !identical(declared, input_shape)) {
    lcnn_abort(c("Layer {.val {layer$name}} declares {.arg input_shape} {format_shape(declared)} \
                  but receives input {format_shapes(input_shape)}."),
               "shape", call = call)
  }
  dtype <- layer$dtype %||% dtype
  state <- layer_plan(layer, input_shape, call)
  check_constraint_axes(layer, state$keras_shapes, call)
  weights <- if (is.null(layer$initial_weights)) {
    layer_initial_weights(layer, state, dtype)
  } else {
    layer_import_weights(layer, layer$initial_weights, state, dtype, arg = "weights",
                         call = call)
  }
  list(state = state, weights = weights, dtype = dtype)
}

as_shape <- function(shape) if (is.list(shape)) lapply(shape, as.integer) else as.integer(shape)

format_shapes <- function(shape) {
  if (!is.list(shape)) return(format_shape(shape))
  paste0("[", paste(vapply(shape, format_shape, character(1)), collapse = ", "), "]")
}

# Whether the layer takes a list of inputs (merges) rather than one.
layer_takes_list <- function(layer) UseMethod("layer_takes_list")

#' @export
layer_takes_list.default <- function(layer) FALSE

layer_commit <- function(layer, plan) {
  if (is.null(plan)) return(invisible(layer))
  if (inherits(layer, "lcnn_model")) return(commit_model_call(layer, plan))
  layer$state <- plan$state
  layer$weights <- plan$weights
  layer$dtype <- plan$dtype
  layer$initial_weights <- NULL
  layer$built <- TRUE
  layer$version <- next_version()
  invisible(layer)
}

# What layer_*() returns, and what calling a layer or a model does: the
# layer itself, the model it was added to, the new symbolic tensor(s) of a
# functional model, or the layer applied to arrays. `arg` names `object` in
# errors (merge layers call it `inputs`).
compose_layer <- function(object, layer, call = rlang::caller_env(), arg = "object") {
  if (inherits(object, "lcnn_sequential")) {
    sequential_add(object, layer, call = call)
    return(invisible(object))
  }
  if (is_symbolic(object)) return(call_symbolic(layer, object, call))
  if (is.numeric(object) || is.logical(object) || is_array_list(object)) {
    return(apply_to_arrays(layer, object, call = call, arg = arg))
  }
  if (is.list(object) && !is.object(object) && length(object)) {
    abort_input_list(object, arg, call)
  }
  lcnn_abort(c("{.arg {arg}} must be missing, a sequential model, a symbolic tensor or a \
                numeric array.",
               x = "Got {format_value(object)}."),
             "argument", call = call)
}

# The error for a list of inputs that is neither all symbolic tensors nor
# all arrays: it names the first element that does not fit the others.
abort_input_list <- function(inputs, arg, call) {
  tensors <- vapply(inputs, inherits, logical(1), "lcnn_tensor")
  if (any(tensors)) {
    bad <- which(!tensors)[1]
    need <- "a symbolic tensor, as {.arg {arg}[[{which(tensors)[1]}]]} is"
  } else {
    bad <- which(!vapply(inputs, function(a) is.numeric(a) || is.logical(a), logical(1)))[1]
    need <- "a numeric array"
  }
  lcnn_abort(c(paste0("{.arg {arg}[[{bad}]]} must be ", need, "."),
               x = "Got {format_value(inputs[[bad]])}.",
               i = "A list of inputs holds symbolic tensors or numeric arrays, not both."),
             "argument", call = call)
}

is_array_list <- function(x) {
  is.list(x) && !is.object(x) && length(x) > 0 &&
    all(vapply(x, function(a) is.numeric(a) || is.logical(a), logical(1)))
}

# Eager use: build the layer for the arrays' shapes if needed and run it. A
# model runs as predict() would.
apply_to_arrays <- function(layer, x, call, arg = "object") {
  if (inherits(layer, "lcnn_model")) return(stats::predict(layer, x))
  many <- layer_takes_list(layer)
  if (many != is_array_list(x)) {
    lcnn_abort(c("Layer {.val {layer$name}} takes {if (many) 'a list of arrays' else 'one array'}.",
                 x = "Got {format_value(x)}."), "argument", call = call)
  }
  arrays <- if (many) x else list(x)
  expected <- if (layer$built) layer$state$input_shape
  arrays <- lapply(seq_along(arrays), function(i) {
    check_input_array(arrays[[i]], if (many) expected[[i]] else expected, call = call,
                      arg = if (many) paste0(arg, "[[", i, "]]") else arg)
  })
  counts <- vapply(arrays, function(a) dim(a)[1], integer(1))
  odd <- which(counts != counts[1])[1]
  if (!is.na(odd)) {
    lcnn_abort(c("All arrays in {.arg {arg}} must have the same number of samples.",
                 x = "{.arg {arg}[[{odd}]]} has {counts[odd]}; {.arg {arg}[[1]]} has \
                      {counts[1]}."),
               "shape", call = call)
  }
  shapes <- lapply(arrays, function(a) dim(a)[-1])
  layer_commit(layer, plan_build(layer, if (many) shapes else shapes[[1]],
                                 layer$dtype %||% "float32", call))
  graph <- list(inputs = shapes, nodes = list(list(layer = layer, inputs = seq_along(shapes))),
                outputs = length(shapes) + 1L, layers = list(layer))
  network <- .network_create(network_spec(graph), layer$dtype, lcnn_num_threads())
  .network_predict(network, arrays, max(1L, dim(arrays[[1]])[1]), lcnn_num_threads())[[1]]
}

layer_output_shape <- function(layer) {
  if (!layer$built) return(NULL)
  c(list(layer$input$batch), as.list(layer$state$output_shape))
}

layer_input_shape <- function(layer) {
  if (!layer$built) return(NULL)
  with_batch <- function(shape) c(list(layer$input$batch), as.list(shape))
  shape <- layer$state$input_shape
  if (is.list(shape)) lapply(shape, with_batch) else with_batch(shape)
}

# Entries of each weight, from its Keras-layout shape (keras_shapes are in
# the order of the weights).
layer_weight_sizes <- function(layer) {
  if (!layer$built) return(numeric())
  vapply(layer$state$keras_shapes, function(d) prod(as.numeric(d)), numeric(1))
}

layer_param_count <- function(layer) {
  if (inherits(layer, "lcnn_model")) return(count_params(layer))
  sum(layer_weight_sizes(layer))
}

layer_fields <- c("name", "type", "built", "trainable", "dtype", "input_shape",
                  "output_shape", "config", "get_weights", "set_weights", "count_params")

#' @export
`$.lcnn_layer` <- function(x, name) {
  switch(name,
    input_shape = layer_input_shape(x),
    output_shape = layer_output_shape(x),
    get_weights = function() get_weights(x),
    set_weights = function(weights) set_weights(x, weights),
    count_params = function() count_params(x),
    get0(name, envir = fields_of(x), inherits = FALSE)
  )
}

#' @export
`$<-.lcnn_layer` <- function(x, name, value) {
  if (identical(name, "trainable")) value <- check_flag(value, arg = "trainable")
  assign(name, value, envir = fields_of(x))
  x
}

#' @export
.DollarNames.lcnn_layer <- function(x, pattern = "") {
  grep(pattern, layer_fields, value = TRUE)
}

#' @export
print.lcnn_layer <- function(x, ...) {
  fields <- fields_of(x)
  cat("<", fields$type, "> ", fields$name, "\n", sep = "")
  if (fields$built) {
    cat("  output shape: ", format_shape(fields$state$output_shape, fields$input$batch), "\n",
        "  parameters:   ", format_count(layer_param_count(x)), "\n", sep = "")
  } else {
    cat("  not built yet (its input shape is not known)\n")
  }
  invisible(x)
}

format_count <- function(n) format(n, big.mark = ",", scientific = FALSE, trim = TRUE)
