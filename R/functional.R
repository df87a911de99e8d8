# The functional API: symbolic tensors from layer_input(), layers and models
# applied to them, and keras_model() turning the graph between some inputs
# and outputs into a model.
#
# A symbolic tensor records the call that made it: its node (an environment
# holding the layer or model called, the input tensors, the call's number
# among the layer's calls, and an id that grows with creation, so sorting
# nodes by id orders them topologically) and which of that call's outputs it
# is.

new_node <- function(layer, inputs) {
  node <- new.env(parent = emptyenv())
  node$layer <- layer
  node$inputs <- inputs
  node$id <- next_version()
  # Which call of the layer this is (keras's node index, shown by summary()).
  node$call <- layer$calls %||% 0L
  layer$calls <- node$call + 1L
  node
}

new_tensor <- function(node, index, shape, batch, dtype) {
  structure(list(node = node, index = index, shape = as.integer(shape), batch = batch,
                 dtype = dtype),
            class = "lcnn_tensor")
}

is_tensor_list <- function(x) {
  is.list(x) && !inherits(x, "lcnn_tensor") && length(x) > 0 &&
    all(vapply(x, inherits, logical(1), "lcnn_tensor"))
}

is_symbolic <- function(x) inherits(x, "lcnn_tensor") || is_tensor_list(x)

#' @export
print.lcnn_tensor <- function(x, ...) {
  cat("<lcnn tensor> shape ", format_shape(x$shape, x$batch), ", ", x$dtype,
      ", from layer \"", x$node$layer$name, "\"\n", sep = "")
  invisible(x)
}

#' Input of a functional model
#'
#' Starts a functional model: `layer_input()` returns a symbolic tensor, any
#' `layer_*()` (or layer object, or model) applied to a symbolic tensor
#' returns a new one, and [keras_model()] makes a model of the graph from
#' inputs to outputs.
#'
#' @param shape Shape of one sample, without the batch.
#' @param batch_shape Shape including the batch size (`NA` or `NULL` first
#'   for any batch size); instead of `shape`.
#' @param name Name of the input layer; `NULL` gives `"input_1"`,
#'   `"input_2"`, ... as in keras.
#' @param dtype `"float32"` (default) or `"float64"`: the precision of the
#'   layers it feeds.
#' @return A symbolic tensor of class `lcnn_tensor`.
#' @family functional
#' @export
#' @examples
#' inputs <- layer_input(shape = c(28, 28, 1))
#' outputs <- inputs %>%
#'   layer_locally_connected_2d(filters = 4, kernel_size = 3, activation = "relu") %>%
#'   layer_flatten() %>%
#'   layer_dense(units = 10, activation = "softmax")
#' model <- keras_model(inputs, outputs)
#' model
layer_input <- function(shape = NULL, batch_shape = NULL, name = NULL, dtype = NULL) {
  call <- rlang::current_env()
  spec <- check_input_shapes(shape, batch_shape, call)
  args <- list(name = check_name(name, call = call) %||% unique_name("input", first = 1L),
               dtype = dtype, input_shape = spec$shape, batch_size = spec$batch)
  layer <- new_layer("input", "InputLayer", "input", list(), args, call = call)
  layer$dtype <- layer$dtype %||% "float32"
  layer_commit(layer, list(state = list(input_shape = spec$shape, output_shape = spec$shape,
                                        keras_shapes = list()),
                           weights = list(), dtype = layer$dtype))
  new_tensor(new_node(layer, list()), 1L, spec$shape, spec$batch, layer$dtype)
}

# layer_input()'s `shape` or `batch_shape` (keras3's names, where layers
# take input_shape and batch_input_shape) as list(shape, batch).
check_input_shapes <- function(shape, batch_shape, call) {
  if (is.null(shape) && is.null(batch_shape)) {
    lcnn_abort("{.arg shape} or {.arg batch_shape} is required.", "argument", call = call)
  }
  if (!is.null(shape) && !is.null(batch_shape)) {
    lcnn_abort("Give {.arg shape} or {.arg batch_shape}, not both.", "argument", call = call)
  }
  if (is.null(batch_shape)) return(list(shape = check_shape(shape, call = call), batch = NULL))
  first <- if (is.list(batch_shape)) batch_shape[[1]] else batch_shape[1]
  unknown <- is.null(first) || (length(first) == 1 && is.na(first))
  rest <- batch_shape[-1]
  list(shape = check_shape(rest, arg = "batch_shape[-1]", call = call),
       batch = if (!unknown) check_count(first, arg = "batch_shape[[1]]", call = call))
}

#' @export
layer_plan.lcnn_layer_input <- function(layer, input_shape, call) {
  lcnn_abort(c("An input layer cannot be applied to a tensor.",
               i = "Use the tensor {.fn layer_input} returned."), "graph", call = call)
}

# Applies a layer or a model to symbolic tensors: builds the layer for their
# shapes if needed and returns the tensor(s) of the new call.
call_symbolic <- function(layer, inputs, call) {
  tensors <- if (inherits(inputs, "lcnn_tensor")) list(inputs) else inputs
  if (inherits(layer, "lcnn_model")) return(call_model_symbolic(layer, tensors, call))
  many <- layer_takes_list(layer)
  if (many && length(tensors) < 2) {
    lcnn_abort(c("Layer {.val {layer$name}} merges a list of at least two tensors.",
                 x = "Got {length(tensors)} tensor{?s}."), "graph", call = call)
  }
  if (!many && length(tensors) != 1) {
    lcnn_abort(c("Layer {.val {layer$name}} takes one tensor.",
                 x = "Got a list of {length(tensors)} tensors."), "graph", call = call)
  }
  dtype <- check_tensors_dtype(tensors, layer$dtype, layer$name, call)
  shapes <- lapply(tensors, function(t) t$shape)
  layer_commit(layer, plan_build(layer, if (many) shapes else shapes[[1]], dtype, call))
  node <- new_node(layer, tensors)
  new_tensor(node, 1L, layer$state$output_shape, tensors[[1]]$batch, dtype)
}

check_tensors_dtype <- function(tensors, dtype, name, call) {
  dtypes <- unique(c(dtype, vapply(tensors, function(t) t$dtype, character(1))))
  if (length(dtypes) > 1) {
    lcnn_abort(c("{.val {name}} mixes dtypes {.val {dtypes}}.",
                 i = "All layers of a model share one dtype."), "argument", call = call)
  }
  dtypes
}

# A model called on tensors is one node of the new graph; its outputs are
# the node's outputs, in order.
call_model_symbolic <- function(model, tensors, call) {
  n_inputs <- model_input_count(model)
  if (length(tensors) != n_inputs) {
    lcnn_abort(c("Model {.val {model$name}} takes {n_inputs} input{?s}.",
                 x = "Got {length(tensors)} tensor{?s}."), "graph", call = call)
  }
  dtype <- check_tensors_dtype(tensors, model_dtype(model), model$name, call)
  shapes <- lapply(tensors, function(t) t$shape)
  if (inherits(model, "lcnn_sequential") && !model_is_built(model)) {
    commit_layers(model, plan_layers(model, shapes[[1]], call), shapes[[1]])
  }
  expected <- model_input_shapes(model)
  for (i in seq_along(tensors)) {
    if (!identical(as.integer(expected[[i]]), shapes[[i]])) {
      lcnn_abort(c("Model {.val {model$name}} expects input {format_shape(expected[[i]])}.",
                   x = "Got a tensor of shape {format_shape(shapes[[i]])}."),
                 "shape", call = call)
    }
  }
  node <- new_node(model, tensors)
  outputs <- lapply(seq_along(model_output_shapes(model)), function(i) {
    new_tensor(node, i, model_output_shapes(model)[[i]], tensors[[1]]$batch, dtype)
  })
  if (length(outputs) == 1) outputs[[1]] else outputs
}

#' Create a functional model
#'
#' A model of the graph of layer calls from `inputs` (tensors from
#' [layer_input()]) to `outputs`, as keras's `keras_model()`. Layers may be
#' shared (called on several tensors: they keep one set of weights), models
#' may be called like layers, and several inputs and outputs are given as
#' lists; then [fit()] and [predict()] take and return lists of arrays in the
#' same order.
#'
#' @param inputs An input tensor, or a list of them.
#' @param outputs A tensor computed from `inputs`, or a list of them.
#' @param name Model name; `NULL` gives `"model"`, `"model_1"`, ...
#' @return A model of class `lcnn_functional`. Like every lcnn model it is
#'   also a function: `model(tensor)` calls it as a layer.
#' @family functional
#' @family models
#' @export
#' @examples
#' a <- layer_input(shape = 8, name = "a")
#' b <- layer_input(shape = 8, name = "b")
#' shared <- layer_dense(units = 4, activation = "relu")
#' merged <- layer_concatenate(list(shared(a), shared(b)))
#' model <- keras_model(list(a, b), layer_dense(merged, units = 1))
#' summary(model)
keras_model <- function(inputs, outputs, name = NULL) {
  call <- rlang::current_env()
  inputs <- check_tensors(inputs, "inputs", call)
  outputs <- check_tensors(outputs, "outputs", call)
  if (!all(vapply(inputs, function(t) inherits(t$node$layer, "lcnn_layer_input"),
                  logical(1)))) {
    lcnn_abort(c("{.arg inputs} must be tensors returned by {.fn layer_input}.",
                 x = "A tensor made by a layer call was given."), "graph", call = call)
  }
  input_ids <- vapply(inputs, function(t) t$node$id, numeric(1))
  if (anyDuplicated(input_ids)) {
    lcnn_abort("{.arg inputs} lists the same input more than once.", "graph", call = call)
  }
  nodes <- reachable_nodes(outputs, input_ids, call)
  name <- check_name(name, call = call)
  layers <- layers_by_depth(inputs, outputs)
  check_unique_names(layers, call)
  model <- new_callable(c("lcnn_functional", "lcnn_model"))
  model$name <- name %||% unique_name("model")
  model$graph <- list(inputs = inputs, nodes = nodes, outputs = outputs)
  model$layers <- layers
  model$dtype <- inputs[[1]]$dtype
  model$trainable <- TRUE
  model
}

check_tensors <- function(x, arg, call) {
  if (inherits(x, "lcnn_tensor")) return(list(x))
  if (is_tensor_list(x)) return(unname(x))
  if (is.list(x) && !is.object(x) && length(x)) {
    bad <- which(!vapply(x, inherits, logical(1), "lcnn_tensor"))[1]
    lcnn_abort(c("{.arg {arg}[[{bad}]]} must be a symbolic tensor.",
                 x = "Got {format_value(x[[bad]])}.",
                 i = "Tensors come from {.fn layer_input} and from layers applied to them."),
               "argument", call = call)
  }
  lcnn_abort(c("{.arg {arg}} must be a symbolic tensor or a list of them.",
               x = "Got {format_value(x)}.",
               i = "Tensors come from {.fn layer_input} and from layers applied to them."),
             "argument", call = call)
}

# Keras refuses a model whose layers (its inputs included; a model inside
# it counts as one layer) share a name: look-ups by name (get_layer(),
# predict()'s named inputs, losses per output) would find only the first.
check_unique_names <- function(layers, call) {
  names <- vapply(layers, function(l) l$name, character(1))
  repeated <- names[duplicated(names)][1]
  if (!is.na(repeated)) {
    lcnn_abort(c("The name {.val {repeated}} is used {sum(names == repeated)} times in the \\
                  model.",
                 i = "All layer names in a model must be unique: give the layers different \\
                      {.arg name}s."),
               "argument", call = call)
  }
}

# The layer-call nodes between `input_ids` and `outputs`, in creation order
# (a topological order); an input node not among `input_ids` means the
# outputs need an input the model is not given.
reachable_nodes <- function(outputs, input_ids, call) {
  seen <- new.env(parent = emptyenv())
  found <- list()
  pending <- lapply(outputs, function(t) t$node)
  while (length(pending)) {
    node <- pending[[length(pending)]]
    pending[[length(pending)]] <- NULL
    key <- as.character(node$id)
    if (!is.null(seen[[key]])) next
    seen[[key]] <- TRUE
    if (inherits(node$layer, "lcnn_layer_input")) {
      if (!(node$id %in% input_ids)) {
        lcnn_abort(c("The outputs are not connected to {.arg inputs}.",
                     x = "They need input {.val {node$layer$name}}, which is not among \\
                          {.arg inputs}.",
                     i = "Was a tensor of another model used?"), "graph", call = call)
      }
      next
    }
    found[[length(found) + 1]] <- node
    pending <- c(pending, lapply(node$inputs, function(t) t$node))
  }
  found[order(vapply(found, function(n) n$id, numeric(1)))]
}

# The model's layers in keras's order, which is also the order of its
# weights: by decreasing depth (the longest path to an output, the largest
# over a shared layer's calls), ties in the order a depth-first walk from
# the outputs meets them.
layers_by_depth <- function(inputs, outputs) {
  key <- function(node) as.character(node$id)
  layers <- list()
  layer_keys <- character()
  finished <- character()
  post_order <- list()
  visit <- function(node) {
    if (key(node) %in% finished) return()
    layer_key <- format(fields_of(node$layer))
    if (!(layer_key %in% layer_keys)) {
      layers[[length(layers) + 1]] <<- node$layer
      layer_keys <<- c(layer_keys, layer_key)
    }
    for (t in node$inputs) visit(t$node)
    finished <<- c(finished, key(node))
    post_order[[length(post_order) + 1]] <<- node
  }
  for (t in outputs) visit(t$node)
  for (t in inputs) visit(t$node)
  node_depth <- list()
  layer_depth <- stats::setNames(numeric(length(layers)), layer_keys)
  for (node in rev(post_order)) {
    layer_key <- format(fields_of(node$layer))
    depth <- max(node_depth[[key(node)]] %||% 0, layer_depth[[layer_key]])
    layer_depth[[layer_key]] <- depth
    node_depth[[key(node)]] <- depth
    for (t in node$inputs) {
      node_depth[[key(t$node)]] <- max(depth + 1, node_depth[[key(t$node)]] %||% 0)
    }
  }
  layers[order(-layer_depth, seq_along(layers))]
}

# Distinct layers or models, in order of first appearance.
unique_objects <- function(objects) {
  # duplicated() compares environments by identity.
  objects[!duplicated(lapply(objects, fields_of))]
}

# A model that contains itself (added to itself, or to a model inside it)
# would be an infinite graph.
check_no_cycle <- function(outer, model, call) {
  for (layer in model$layers) {
    if (!inherits(layer, "lcnn_model")) next
    if (identical(layer, outer)) {
      lcnn_abort(c("Model {.val {outer$name}} would contain itself.",
                   i = "A model cannot be one of its own layers, directly or through another \\
                        model."), "graph", call = call)
    }
    check_no_cycle(outer, layer, call)
  }
}
