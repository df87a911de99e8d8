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
#' @return A model of class `lcnn_sequential`.
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
  model <- new.env(parent = emptyenv())
  model$name <- if (is.null(check_name(name))) unique_name("sequential") else name
  model$layers <- list()
  model$input <- input
  model$dtype <- check_dtype(dtype)
  model$engine <- NULL
  model$engine_key <- NULL
  class(model) <- c("lcnn_sequential", "lcnn_model")
  if (inherits(layers, "lcnn_layer")) layers <- list(layers)
  if (!is.null(layers) && !(is.list(layers) && all(vapply(layers, inherits, logical(1),
                                                          "lcnn_layer")))) {
    lcnn_abort(c("{.arg layers} must be NULL or a list of layers.",
                 x = "Got {format_value(layers)}."), "argument")
  }
  for (layer in layers) sequential_add(model, layer, call = rlang::current_env())
  model
}

# The per-sample shape flowing into the model, if known.
model_input_shape <- function(model) {
  model$input$shape %||% if (length(model$layers)) model$layers[[1]]$input$shape
}

model_batch <- function(model) {
  model$input$batch %||% if (length(model$layers)) model$layers[[1]]$input$batch
}

model_dtype <- function(model) {
  model[["dtype"]] %||% (if (length(model$layers)) model$layers[[1]]$dtype) %||% "float32"
}

model_is_built <- function(model) {
  length(model$layers) > 0 && all(vapply(model$layers, function(l) l$built, logical(1)))
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
  if (length(model$layers) && !is.null(layer$dtype) && layer$dtype != dtype) {
    lcnn_abort(c("Layer {.val {layer$name}} has dtype {.val {layer$dtype}} but model \\
                  {.val {model$name}} computes in {.val {dtype}}.",
                 i = "All layers of a model share one dtype."),
               "argument", call = call)
  }
}

# Adds a layer in place, building it when the model's output shape is known.
# Nothing changes if the layer cannot be added.
sequential_add <- function(model, layer, call) {
  if (!inherits(layer, "lcnn_layer")) {
    lcnn_abort(c("Only layers can be added to a model.", x = "Got {format_value(layer)}."),
               "argument", call = call)
  }
  if (any(vapply(model$layers, identical, logical(1), layer))) {
    lcnn_abort("Layer {.val {layer$name}} is already in model {.val {model$name}}.",
               "argument", call = call)
  }
  check_layer_dtype(model, layer, call)
  if (length(model$layers) && !is.null(layer$input$shape) && !model_is_built(model)) {
    lcnn_abort(c("Layer {.val {layer$name}} declares an input shape, but it is not the first \\
                  layer of model {.val {model$name}}, whose input shape is unknown."),
               "argument", call = call)
  }
  plan <- NULL
  previous <- if (length(model$layers)) {
    last <- model$layers[[length(model$layers)]]
    if (last$built) last$state$output_shape
  } else {
    model_input_shape(model) %||% layer$input$shape
  }
  if (!is.null(previous)) plan <- plan_build(layer, previous, model_dtype(model), call)
  if (is.null(model$input$shape) && length(model$layers) == 0) {
    model$input <- list(shape = layer$input$shape, batch = model$input$batch %||% layer$input$batch)
  }
  layer_commit(layer, plan)
  model$layers <- c(model$layers, list(layer))
  # A new layer means a new network to train: the next fit() starts afresh.
  model$trainer <- NULL
  model$optimizer_state <- NULL
  invisible(model)
}

# Plans building every layer of an unbuilt model for per-sample input
# `input_shape`; nothing changes until commit_layers().
plan_layers <- function(model, input_shape, call) {
  plans <- vector("list", length(model$layers))
  shape <- input_shape
  dtype <- model_dtype(model)
  for (i in seq_along(model$layers)) {
    plans[i] <- list(plan_build(model$layers[[i]], shape, dtype, call))
    shape <- plans[[i]]$state$output_shape %||% model$layers[[i]]$state$output_shape
  }
  plans
}

commit_layers <- function(model, plans, input_shape) {
  for (i in seq_along(model$layers)) layer_commit(model$layers[[i]], plans[[i]])
  model$input$shape <- as.integer(input_shape)
  invisible(model)
}

model_fields <- c("name", "layers", "input_shape", "output_shape", "built", "dtype", "add",
                  "get_weights", "set_weights", "count_params")

#' @export
`$.lcnn_model` <- function(x, name) {
  switch(name,
    input_shape = {
      shape <- model_input_shape(x)
      if (!is.null(shape)) c(list(model_batch(x)), as.list(shape))
    },
    output_shape = if (model_is_built(x)) {
      layers <- x[["layers"]]
      c(list(model_batch(x)), as.list(layers[[length(layers)]]$state$output_shape))
    },
    built = model_is_built(x),
    dtype = model_dtype(x),
    add = function(layer) sequential_add(x, layer, call = rlang::current_env()),
    get_weights = function() get_weights(x),
    set_weights = function(weights) set_weights(x, weights),
    count_params = function() count_params(x),
    get0(name, envir = x, inherits = FALSE)
  )
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
  invisible(x)
}
