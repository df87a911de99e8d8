# What sequential and functional models share: their fields, their inputs
# and outputs, and the flat graph of layer calls the engine runs (models
# inside models inlined).

model_input_count <- function(model) {
  if (inherits(model, "lcnn_functional")) length(model$graph$inputs) else 1L
}

# Per-sample input shapes, one per input (NULL entries while unknown).
model_input_shapes <- function(model) {
  if (inherits(model, "lcnn_functional")) return(lapply(model$graph$inputs, function(t) t$shape))
  list(model_input_shape(model))
}

# Per-sample output shapes of a built model, one per output.
model_output_shapes <- function(model) {
  if (inherits(model, "lcnn_functional")) {
    return(lapply(model$graph$outputs, function(t) t$shape))
  }
  list(output_shape_of(model$layers[[length(model$layers)]]))
}

# Names of the layers that make the outputs (keras names losses and
# metrics of several outputs after them), and of the input layers.
model_output_names <- function(model) {
  if (!inherits(model, "lcnn_functional")) return(model$layers[[length(model$layers)]]$name)
  vapply(model$graph$outputs, function(t) t$node$layer$name, character(1))
}

model_input_names <- function(model) {
  if (!inherits(model, "lcnn_functional")) return("input")
  vapply(model$graph$inputs, function(t) t$node$layer$name, character(1))
}

# The layers that hold weights, each once, in keras's weight order: the
# model's layers in order, models among them expanded.
model_leaf_layers <- function(model) {
  leaves <- unlist(lapply(model$layers, function(l) {
    if (inherits(l, "lcnn_model")) model_leaf_layers(l)
    else if (!inherits(l, "lcnn_layer_input")) list(l)
  }), recursive = FALSE)
  if (is.null(leaves)) list() else unique_objects(leaves)
}

# The model as the engine runs it: list(inputs = per-sample shapes, nodes =
# list(layer, inputs = value ids), outputs = value ids, layers = leaf
# layers). Value ids count the inputs first, then the nodes' outputs.
flat_graph <- function(model) {
  acc <- new.env(parent = emptyenv())
  acc$nodes <- list()
  acc$n_inputs <- model_input_count(model)
  outputs <- inline_model(model, seq_len(acc$n_inputs), acc)
  list(inputs = model_input_shapes(model), nodes = acc$nodes, outputs = outputs,
       layers = model_leaf_layers(model))
}

# Appends the nodes of `model` applied to values `inputs` to acc$nodes and
# returns the values of its outputs.
inline_model <- function(model, inputs, acc) {
  add_node <- function(layer, values) {
    if (inherits(layer, "lcnn_model")) return(inline_model(layer, values, acc))
    acc$nodes[[length(acc$nodes) + 1]] <- list(layer = layer, inputs = values)
    acc$n_inputs + length(acc$nodes)
  }
  if (inherits(model, "lcnn_sequential")) {
    value <- inputs
    for (layer in model$layers) value <- add_node(layer, value)
    return(value)
  }
  values <- new.env(parent = emptyenv())
  for (i in seq_along(model$graph$inputs)) {
    values[[as.character(model$graph$inputs[[i]]$node$id)]] <- inputs[i]
  }
  value_of <- function(t) values[[as.character(t$node$id)]][t$index]
  for (node in model$graph$nodes) {
    ids <- vapply(node$inputs, value_of, numeric(1))
    values[[as.character(node$id)]] <- add_node(node$layer, ids)
  }
  vapply(model$graph$outputs, value_of, numeric(1))
}

model_fields <- c("name", "layers", "inputs", "outputs", "input_shape", "output_shape", "built",
                  "dtype", "trainable", "add", "get_weights", "set_weights", "count_params",
                  "get_layer")

#' @export
`$.lcnn_model` <- function(x, name) {
  switch(name,
    input_shape = {
      shapes <- model_input_shapes(x)
      if (!is.null(shapes[[1]])) with_model_batch(x, shapes)
    },
    output_shape = if (model_is_built(x)) with_model_batch(x, model_output_shapes(x)),
    inputs = if (inherits(x, "lcnn_functional")) x$graph$inputs,
    outputs = if (inherits(x, "lcnn_functional")) x$graph$outputs,
    built = model_is_built(x),
    dtype = model_dtype(x),
    add = function(layer) {
      if (!inherits(x, "lcnn_sequential")) {
        lcnn_abort("Only sequential models have {.code $add()}.", "argument")
      }
      sequential_add(x, layer, call = rlang::current_env())
    },
    get_weights = function() get_weights(x),
    set_weights = function(weights) set_weights(x, weights),
    count_params = function() count_params(x),
    get_layer = function(name = NULL, index = NULL) get_layer(x, name, index),
    get0(name, envir = fields_of(x), inherits = FALSE)
  )
}

# Shapes as keras R shows them: NULL for the batch, a list per input or
# output when there are several.
with_model_batch <- function(model, shapes) {
  out <- lapply(shapes, function(s) c(list(model_batch(model)), as.list(s)))
  if (length(out) == 1) out[[1]] else out
}

#' @export
`$<-.lcnn_model` <- function(x, name, value) {
  if (identical(name, "trainable")) {
    value <- check_flag(value, arg = "trainable")
    for (layer in x$layers) layer$trainable <- value
  }
  assign(name, value, envir = fields_of(x))
  x
}

#' @export
.DollarNames.lcnn_model <- function(x, pattern = "") {
  grep(pattern, model_fields, value = TRUE)
}

#' @export
print.lcnn_model <- function(x, ...) {
  if (model_is_built(x)) {
    summary(x)
  } else {
    cat("Model: \"", x$name, "\" with ", length(x$layers), " layer(s), not built yet\n", sep = "")
  }
  if (!is.null(x$compiled)) cat("Compiled for device: ", model_device(x), "\n", sep = "")
  invisible(x)
}

#' Get a layer of a model
#'
#' By name or by position (from 1, in `model$layers`), as keras's
#' `get_layer()`.
#'
#' @param object A model.
#' @param name Name of the layer.
#' @param index Position of the layer, from 1.
#' @return The layer (or model) object.
#' @family models
#' @export
#' @examples
#' model <- keras_model_sequential(input_shape = 4) %>% layer_dense(2, name = "out")
#' get_layer(model, "out")
get_layer <- function(object, name = NULL, index = NULL) {
  call <- rlang::current_env()
  if (!inherits(object, "lcnn_model")) {
    lcnn_abort(c("{.arg object} must be a model.", x = "Got {format_value(object)}."),
               "argument", call = call)
  }
  if (!is.null(name) && !is.null(index)) {
    lcnn_abort(c("Give a layer's {.arg name} or its {.arg index}, not both.",
                 x = "Got {.arg name} = {format_value(name)}, {.arg index} = \\
                      {format_value(index)}."), "argument", call = call)
  }
  layers <- object$layers
  names <- vapply(layers, function(l) l$name, character(1))
  if (!is.null(name) && is.character(name) && length(name) == 1 && name %in% names) {
    return(layers[[match(name, names)]])
  }
  if (is_whole(index) && length(index) == 1 &&
      index >= 1 && index <= length(layers)) {
    return(layers[[index]])
  }
  lcnn_abort(c("Model {.val {object$name}} has no such layer.",
               x = "Got {.arg name} = {format_value(name)}, {.arg index} = \\
                    {format_value(index)}.",
               i = "Its layers: {.val {names}}."), "argument", call = call)
}
