# The bridge to the C++ engine: engine networks are built from the layers'
# specs and weights (R keeps both, so a model survives saveRDS()), cached on
# the model, and rebuilt when a layer's weights change.

run_network <- function(layers, dtype, x, batch_size) {
  .network_predict(create_network(layers, dtype), x, batch_size, lcnn_num_threads())
}

create_network <- function(layers, dtype) {
  .network_create(lapply(layers, layer_engine_spec), dtype)
}

# The model's engine network, rebuilt if any layer changed since it was made
# (or if it came back from saveRDS() as a null pointer).
model_network <- function(model) {
  key <- vapply(model$layers, function(l) l$version, numeric(1))
  if (is.null(model$engine) || !identical(model$engine_key, key) ||
      .network_is_null(model$engine)) {
    model$engine <- create_network(model$layers, model_dtype(model))
    model$engine_key <- key
  }
  model$engine
}
