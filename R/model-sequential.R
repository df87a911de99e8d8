#' Create a sequential model
#'
#' A linear stack of layers. Models have reference semantics, as in Keras:
#' `model %>% layer_locally_connected_2d(...)` adds the layer to `model`
#' itself (no reassignment needed) and returns it invisibly, and `|>` does the
#' same.
#'
#' With an input shape (here, or as `input_shape` of the first layer) every
#' layer is built as it is added: its weights are created and its output
#' shape is known, so `summary()` works at once. Without one, the model is
#' built by the first `predict()`.
#'
#' Fields: `model$name`, `model$layers` (a list of the layer objects),
#' `model$input_shape` and `model$output_shape` (lists with `NULL` for the
#' batch, as in R keras), `model$built`, `model$dtype`. `model$add(layer)`
#' adds an existing layer object; `model$get_weights()`,
#' `model$set_weights(w)` and `model$count_params()` work as in R keras.
#'
#' @param layers A list of layers to add.
#' @param name Model name; `NULL` gives `"sequential"`, `"sequential_1"`, ...
#' @param input_shape Shape of one sample, without the batch.
#' @param batch_size Fixed batch size or `NULL`.
#' @param dtype `"float32"` or `"float64"`: the precision of the layers that
#'   do not set their own (default `"float32"`).
#' @return A model of class `lcnn_sequential`. Like every lcnn model it is
#'   also a function: `model(tensor)` calls it as a layer of a functional
#'   model.
#' @family models
#' @export
#' @examples
#' model <- keras_model_sequential(input_shape = c(10, 32), name = "genomic")
#' model %>%
#'   layer_locally_connected_1d(filters = 64, kernel_size = 3) %>%
#'   layer_locally_connected_1d(filters = 32, kernel_size = 3)
#' model$output_shape
#' model
keras_model_sequential <- function(layers = NULL, name = NULL, input_shape = NULL,
                                   batch_size = NULL, dtype = NULL) {
  input <- check_input_spec(input_shape, NULL, batch_size)
  model <- new_callable(c("lcnn_sequential", "lcnn_model"))
  model$name <- if (is.null(check_name(name))) unique_name("sequential") else name
  model$layers <- list()
  model$input <- input
  model$dtype <- check_dtype(dtype)
  model$trainable <- TRUE
  if (is_layer_or_model(layers)) layers <- list(layers)
  if (!is.null(layers) && !(is.list(layers) && all(vapply(layers, is_layer_or_model,
                                                          logical(1))))) {
    lcnn_abort(c("{.arg layers} must be NULL or a list of layers.",
                 x = "Got {format_value(layers)}."), "argument")
  }
  for (layer in layers) sequential_add(model, layer, call = rlang::current_env())
  model
}

is_layer_or_model <- function(x) inherits(x, "lcnn_layer") || inherits(x, "lcnn_model")

# The per-sample shape flowing into a sequential model, if known.
model_input_shape <- function(model) {
  model$input$shape %||% if (length(model$layers)) declared_input_shape(model$layers[[1]])
}

# The input shape a layer or model declares (NULL if none).
declared_input_shape <- function(x) {
  if (inherits(x, "lcnn_sequential")) return(model_input_shape(x))
  if (inherits(x, "lcnn_functional")) return(model_input_shapes(x)[[1]])
  x$input$shape
}

model_batch <- function(model) {
  if (inherits(model, "lcnn_functional")) return(model$graph$inputs[[1]]$batch)
  model$input$batch %||% if (length(model$layers)) {
    first <- model$layers[[1]]
    if (inherits(first, "lcnn_model")) model_batch(first) else first$input$batch
  }
}

model_dtype <- function(model) {
  fields_of(model)$dtype %||% (if (length(model$layers)) model_dtype_of(model$layers[[1]])) %||%
    "float32"
}

model_dtype_of <- function(x) if (inherits(x, "lcnn_model")) model_dtype(x) else x$dtype

model_is_built <- function(model) {
  if (inherits(model, "lcnn_functional")) return(TRUE)
  length(model$layers) > 0 && all(vapply(model$layers, function(l) isTRUE(l$built), logical(1)))
}

check_model_built <- function(model, call) {
  if (!model_is_built(model)) {
    lcnn_abort(c("Model {.val {model$name}} has not been built yet.",
                 i = "Give {.arg input_shape} to {.fn keras_model_sequential} or to the first \\
                      layer, or call {.fn predict} on data first."),
               "state", call = call)
  }
}

check_layer_dtype <- function(model, layer, call) {
  dtype <- model_dtype(model)
  own <- if (inherits(layer, "lcnn_model")) fields_of(layer)$dtype else layer$dtype
  if (length(model$layers) && !is.null(own) && own != dtype) {
    lcnn_abort(c("Layer {.val {layer$name}} has dtype {.val {own}} but model \\
                  {.val {model$name}} computes in {.val {dtype}}.",
                 i = "All layers of a model share one dtype."),
               "argument", call = call)
  }
}

# Adds a layer in place, building it when the model's output shape is known.
# Nothing changes if the layer cannot be added.
sequential_add <- function(model, layer, call) {
  if (!is_layer_or_model(layer)) {
    lcnn_abort(c("Only layers and models can be added to a model.",
                 x = "Got {format_value(layer)}."),
               "argument", call = call)
  }
  if (any(vapply(model$layers, identical, logical(1), layer))) {
    lcnn_abort("Layer {.val {layer$name}} is already in model {.val {model$name}}.",
               "argument", call = call)
  }
  # Keras refuses repeated names: look-ups by name (get_layer(), losses and
  # metrics per output) would find the first layer of that name.
  if (layer$name %in% vapply(model$layers, function(l) l$name, character(1))) {
    lcnn_abort(c("Model {.val {model$name}} already has a layer named {.val {layer$name}}.",
                 i = "All layer names in a model must be unique: give the layer another \\
                      {.arg name}."),
               "argument", call = call)
  }
  if (inherits(layer, "lcnn_model")) check_nested_model(model, layer, call)
  if (inherits(layer, "lcnn_layer_input")) {
    lcnn_abort(c("An input layer cannot be added to a sequential model.",
                 i = "Give {.arg input_shape} to {.fn keras_model_sequential} instead."),
               "argument", call = call)
  }
  check_layer_dtype(model, layer, call)
  declared <- declared_input_shape(layer)
  if (length(model$layers) && !is.null(declared) && !inherits(layer, "lcnn_model") &&
      !model_is_built(model)) {
    lcnn_abort(c("Layer {.val {layer$name}} declares an input shape, but it is not the first \\
                  layer of model {.val {model$name}}, whose input shape is unknown."),
               "argument", call = call)
  }
  plan <- NULL
  previous <- if (length(model$layers)) {
    last <- model$layers[[length(model$layers)]]
    if (isTRUE(last$built)) output_shape_of(last)
  } else {
    model_input_shape(model) %||% declared
  }
  if (!is.null(previous)) plan <- plan_build(layer, previous, model_dtype(model), call)
  if (is.null(model$input$shape) && length(model$layers) == 0) {
    model$input <- list(shape = declared, batch = model$input$batch %||% model_batch_of(layer))
  }
  layer_commit(layer, plan)
  model$layers <- c(model$layers, list(layer))
  # A new layer means a new network to train: the next fit() starts afresh.
  model$trainer <- NULL
  model$optimizer_state <- NULL
  invisible(model)
}

model_batch_of <- function(x) if (inherits(x, "lcnn_model")) model_batch(x) else x$input$batch

# The per-sample output shape of a built layer, or of a one-output model.
output_shape_of <- function(x) {
  if (inherits(x, "lcnn_model")) model_output_shapes(x)[[1]] else x$state$output_shape
}

# A model inside a sequential model has one input and one output, and does
# not contain the model it is added to.
check_nested_model <- function(model, inner, call) {
  if (model_input_count(inner) != 1 || length(model_output_shapes(inner)) != 1) {
    lcnn_abort(c("Model {.val {inner$name}} cannot be a layer of a sequential model.",
                 x = "It has {model_input_count(inner)} input{?s} and \\
                      {length(model_output_shapes(inner))} output{?s}; a sequential model \\
                      needs one of each."), "graph", call = call)
  }
  if (identical(inner, model) || contains_model(inner, model)) {
    lcnn_abort(c("Model {.val {model$name}} would contain itself.",
                 i = "A model cannot be one of its own layers, directly or through another \\
                      model."), "graph", call = call)
  }
}

contains_model <- function(outer, model) {
  any(vapply(outer$layers, function(l) {
    inherits(l, "lcnn_model") && (identical(l, model) || contains_model(l, model))
  }, logical(1)))
}

# Plans building every layer of an unbuilt sequential model for per-sample
# input `input_shape`; nothing changes until commit_layers().
plan_layers <- function(model, input_shape, call) {
  plans <- vector("list", length(model$layers))
  shape <- input_shape
  dtype <- model_dtype(model)
  for (i in seq_along(model$layers)) {
    plans[i] <- list(plan_build(model$layers[[i]], shape, dtype, call))
    shape <- plans[[i]]$state$output_shape %||% output_shape_of(model$layers[[i]])
  }
  plans
}

commit_layers <- function(model, plans, input_shape) {
  for (i in seq_along(model$layers)) layer_commit(model$layers[[i]], plans[[i]])
  model$input$shape <- as.integer(input_shape)
  invisible(model)
}

# A model used as a layer of a sequential model: a built one must fit the
# shape; an unbuilt sequential one is planned for it.
plan_model_call <- function(model, input_shape, call) {
  if (model_is_built(model)) {
    expected <- model_input_shapes(model)[[1]]
    if (!identical(as.integer(expected), input_shape)) {
      lcnn_abort(c("Model {.val {model$name}} expects input {format_shape(expected)} and \\
                    cannot take input {format_shapes(input_shape)}."), "shape", call = call)
    }
    return(NULL)
  }
  plans <- plan_layers(model, input_shape, call)
  last <- length(plans)
  list(plans = plans, input_shape = input_shape,
       state = list(output_shape = plans[[last]]$state$output_shape %||%
                      output_shape_of(model$layers[[last]])))
}

commit_model_call <- function(model, plan) {
  commit_layers(model, plan$plans, plan$input_shape)
}
