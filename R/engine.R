# The bridge to the C++ engine: engine networks are built from the layers'
# specs and weights (R keeps both, so a model survives saveRDS()), cached on
# the model, and rebuilt when a layer's weights change.

run_network <- function(layers, dtype, x, batch_size) {
  .network_predict(create_network(layers, dtype), x, batch_size, lcnn_num_threads())
}

create_network <- function(layers, dtype) {
  .network_create(engine_specs(layers), dtype)
}

# The layers' engine specs. A layer's randomness (dropout) is told apart from
# the others' by a salt: its `seed` if it has one, else its position.
engine_specs <- function(layers) {
  lapply(seq_along(layers), function(i) {
    spec <- layer_engine_spec(layers[[i]])
    if ("salt" %in% names(spec) && is.null(spec$salt)) spec$salt <- i
    spec
  })
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

layer_versions <- function(model) vapply(model$layers, function(l) l$version, numeric(1))

# The model's engine trainer: created on the first fit() after compile() (or
# after readRDS(), restoring the optimizer state R kept), and brought up to
# date if weights were set since.
model_trainer <- function(model, data) {
  key <- layer_versions(model)
  if (is.null(model$trainer) || .network_is_null(model$trainer)) {
    spec <- training_spec(model, data)
    model$trainer <- .trainer_create(engine_specs(model$layers), model_dtype(model), spec)
    state <- model$optimizer_state
    # The saved state belongs to the blocks that trained when it was saved.
    if (!is.null(state) && identical(state$trainable, spec$trainable)) {
      .trainer_restore_optimizer(model$trainer, state$iterations, state$learning_rate,
                                 state$slots)
    }
  } else if (!identical(model$trainer_key, key)) {
    .trainer_set_parameters(model$trainer, model_parameter_blocks(model))
  }
  model$trainer_key <- key
  model$trainer
}

model_parameter_blocks <- function(model) {
  unname(unlist(lapply(model$layers, function(l) unname(l$weights)), recursive = FALSE))
}

# What the engine's trainer needs: loss, resolved metrics, optimizer, and
# per parameter block whether it trains and its L1/L2 penalty.
training_spec <- function(model, data) {
  compiled <- model$compiled
  blocks <- unlist(lapply(model$layers, function(l) {
    lapply(names(l$weights), function(w) {
      penalty <- l$config[[paste0(w, "_regularizer")]]
      list(trainable = l$trainable, l1 = penalty$l1 %||% 0, l2 = penalty$l2 %||% 0,
           constraint = constraint_spec(l, w))
    })
  }), recursive = FALSE)
  activity <- lapply(model$layers, function(l) l$config$activity_regularizer)
  optimizer <- compiled$optimizer
  list(
    loss = compiled$loss$name, from_logits = compiled$loss$from_logits,
    delta = compiled$loss$delta,
    metrics = vapply(compiled$metrics, resolve_metric, character(1), loss = compiled$loss,
                     target_dims = data$target_dims, output_dims = data$output_dims),
    optimizer = unclass(optimizer)[c("name", "learning_rate", "momentum", "nesterov", "beta_1",
                                     "beta_2", "amsgrad", "rho", "centered",
                                     "initial_accumulator_value", "epsilon")],
    trainable = training_spec_trainable(model),
    l1 = vapply(blocks, function(b) b$l1, numeric(1)),
    l2 = vapply(blocks, function(b) b$l2, numeric(1)),
    constraints = lapply(blocks, function(b) b$constraint),
    activity_l1 = vapply(activity, function(r) r$l1 %||% 0, numeric(1)),
    activity_l2 = vapply(activity, function(r) r$l2 %||% 0, numeric(1))
  )
}

# A weight's constraint for the engine. Norms run over `axis` of the
# Keras-layout array: weights sharing all other indices form a group,
# numbered in that array and carried into lcnn's layout by the layer's own
# map (0 where a weight has no Keras entry).
constraint_spec <- function(layer, weight) {
  constraint <- layer$config[[paste0(weight, "_constraint")]]
  if (is.null(constraint)) {
    return(list(name = "none", min_value = 0, max_value = 0, rate = 1, group = numeric()))
  }
  args <- constraint$args
  group <- numeric()
  if (!is.null(args$axis)) {
    dims <- layer$state$keras_shapes[[weight]]
    axis <- ifelse(args$axis < 0, length(dims) + args$axis, args$axis) + 1
    index <- arrayInd(seq_len(prod(dims)), dims)
    kept <- setdiff(seq_along(dims), axis)
    keys <- if (length(kept)) index[, kept, drop = FALSE] - 1 else matrix(0, nrow(index), 0)
    strides <- cumprod(c(1, dims[kept]))[seq_along(kept)]
    group <- array(1 + keys %*% strides, dims)
    group <- layer_engine_layout(layer, weight, group)
  }
  list(name = constraint$name, min_value = args$min_value %||% 0,
       max_value = args$max_value %||% 0, rate = args$rate %||% 1, group = group)
}

# Per parameter block, whether it trains.
training_spec_trainable <- function(model) {
  as.logical(unlist(lapply(model$layers, layer_weight_trainable)))
}

# Copies the trained weights and optimizer state back into R, so that
# get_weights(), predict() and saveRDS() see them.
sync_from_trainer <- function(model, trainer) {
  values <- .trainer_parameters(trainer)
  k <- 0
  for (layer in model$layers) {
    for (w in names(layer$weights)) {
      k <- k + 1
      layer$weights[[w]] <- values[[k]]
    }
    if (length(layer$weights)) layer$version <- next_version()
  }
  model$trainer_key <- layer_versions(model)
  model$optimizer_state <- c(.trainer_optimizer_state(trainer),
                             list(trainable = training_spec_trainable(model)))
  invisible(model)
}
