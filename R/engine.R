# The bridge to the C++ engine: engine networks are built from the layers'
# specs and weights (R keeps both, so a model survives saveRDS()), cached on
# the model, and rebuilt when a layer's weights change.

# The engine's description of a flat graph (see flat_graph()): 0-based ids,
# one layer spec per node. A layer's randomness (dropout) is told apart from
# the others' by a salt: its `seed` if it has one, else its node's position.
network_spec <- function(graph) {
  nodes <- lapply(seq_along(graph$nodes), function(k) {
    node <- graph$nodes[[k]]
    spec <- layer_engine_spec(node$layer)
    if ("salt" %in% names(spec) && is.null(spec$salt)) spec$salt <- k
    list(layer = layer_index(graph$layers, node$layer) - 1L,
         inputs = as.integer(node$inputs) - 1L, spec = spec)
  })
  list(inputs = lapply(graph$inputs, as.integer), nodes = nodes,
       outputs = as.integer(graph$outputs) - 1L)
}

layer_index <- function(layers, layer) {
  which(vapply(layers, identical, logical(1), layer))[1]
}

# The weights' versions of the layer of each node of flat_graph(), in its
# order (every layer has one, renewed whenever its weights change): the
# engine network is rebuilt, and the trainer's weights reset, when it
# changed (or the network came back from saveRDS() as a null pointer).
# Walks the model as inline_model() does without building the graph, which
# every predict() would otherwise pay for.
engine_key <- function(model) {
  layers <- if (inherits(model, "lcnn_functional")) {
    lapply(model$graph$nodes, function(node) node$layer)
  } else {
    model$layers
  }
  unlist(lapply(layers, function(l) if (inherits(l, "lcnn_model")) engine_key(l) else l$version))
}

model_network <- function(model, call = rlang::caller_env()) {
  key <- engine_key(model)
  if (is.null(model$engine) || !identical(model$engine_key, key) ||
      .network_is_null(model$engine)) {
    model$engine <- engine_checked(model, call, {
      .network_create(network_spec(flat_graph(model)), model_dtype(model), lcnn_num_threads())
    })
    model$engine_key <- key
  }
  model$engine
}

# `expr`, which hands the engine the model's layers and weights. The engine
# checks that each layer takes what the one before gives and that the
# weights fit; a model that fails that was changed inside after it was
# built (a model in it gained a layer, which R cannot see from the outer
# model; keras fails there too), and gets a classed error rather than the
# engine's own.
engine_checked <- function(model, call, expr) {
  tryCatch(expr, `std::invalid_argument` = function(e) {
    lcnn_abort(c("Model {.val {model$name}} no longer fits together.",
                 x = "{conditionMessage(e)}",
                 i = "A model inside it may have gained or lost layers after it was built."),
               "state", call = call)
  })
}

# The model's engine trainer: created on the first fit() after compile() (or
# after readRDS(), restoring the optimizer state R kept), and brought up to
# date if weights were set since. It runs on the device device_for_model()
# settles, which compile()'s record then shows.
model_trainer <- function(model, data, call = rlang::caller_env()) {
  key <- engine_key(model)
  # A model inside this one that gained or lost layers since the trainer was
  # made changes the key too, but setting the weights would then train the
  # old network on (the blocks may even line up): a new network, with a
  # fresh optimizer, as after adding a layer to the model itself.
  if (!is.null(model$trainer) && !.network_is_null(model$trainer) &&
      !identical(model$trainer_key, key) &&
      !identical(model$trainer_layers, model_leaf_layers(model))) {
    model$trainer <- NULL
    model$optimizer_state <- NULL
  }
  if (is.null(model$trainer) || .network_is_null(model$trainer)) {
    state <- model$optimizer_state
    # Slots are the engine's raw values; lcnn's development builds before
    # them saved doubles.
    if (!is.null(state) && !all(vapply(state$slots, is.raw, logical(1)))) {
      lcnn_abort(c("The optimizer state saved with model {.val {model$name}} is in an older \
                    format.",
                   i = "Call {.code compile()} on the model again to train on with a fresh \
                        optimizer."), "state", call = call)
    }
    graph <- flat_graph(model)
    spec <- training_spec(model, graph, data)
    device <- device_for_model(model, graph, call = call)
    compiled <- model$compiled
    compiled$device <- device
    model$compiled <- compiled
    trainer <- engine_checked(model, call, tryCatch(
      .trainer_create(network_spec(graph), model_dtype(model), spec, device,
                      lcnn_num_threads()),
      error = function(e) {
        if (device != "cuda") stop(e)
        reason <- conditionMessage(e)
        lcnn_abort(c("The GPU could not take model {.val {model$name}}.", x = "{reason}"),
                   "device", call = call)
      }))
    # The saved state belongs to the blocks that trained when it was saved.
    if (!is.null(state) && identical(state$trainable, spec$trainable)) {
      .trainer_restore_optimizer(trainer, state$iterations, state$learning_rate, state$slots)
    }
    model$trainer <- trainer
    model$trainer_layers <- model_leaf_layers(model)
  } else if (!identical(model$trainer_key, key)) {
    engine_checked(model, call,
                   .trainer_set_parameters(model$trainer, model_parameter_blocks(model)))
  }
  model$trainer_key <- key
  model$trainer
}

model_parameter_blocks <- function(model) {
  unname(unlist(lapply(model_leaf_layers(model), function(l) unname(l$weights)),
                recursive = FALSE))
}

# What the engine's trainer needs: per output its loss, weight and resolved
# metrics; the optimizer; per parameter block whether it trains, its L1/L2
# penalty and constraint; per layer its activity penalty.
training_spec <- function(model, graph, data) {
  compiled <- model$compiled
  layers <- graph$layers
  blocks <- unlist(lapply(layers, function(l) {
    lapply(names(l$weights), function(w) {
      penalty <- l$config[[paste0(w, "_regularizer")]]
      list(l1 = penalty$l1 %||% 0, l2 = penalty$l2 %||% 0, constraint = constraint_spec(l, w))
    })
  }), recursive = FALSE)
  activity <- lapply(layers, function(l) l$config$activity_regularizer)
  optimizer <- compiled$optimizer
  outputs <- lapply(seq_along(data$outputs), function(o) {
    target <- data$outputs[[o]]
    list(loss = target$loss$name, from_logits = target$loss$from_logits,
         delta = target$loss$delta, weight = target$weight,
         metrics = vapply(target$metrics, resolve_metric, character(1), loss = target$loss,
                          target_dims = target$target_dims, output_dims = target$output_dims))
  })
  list(
    outputs = outputs,
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

# Per parameter block (the weights of model_leaf_layers(), in order), whether
# it trains. Keras 2 gives a model with trainable = FALSE no trainable
# weights, whatever its layers' own flags: a layer's weights train only when
# it and every model enclosing it are trainable (on some path, for a layer
# shared between a model and a model inside it).
training_spec_trainable <- function(model) {
  open <- open_leaf_layers(model)
  as.logical(unlist(lapply(model_leaf_layers(model), function(layer) {
    layer_weight_trainable(layer) & any(vapply(open, identical, logical(1), layer))
  })))
}

# The layers reached from `model` through trainable models only.
open_leaf_layers <- function(model) {
  if (!model$trainable) return(list())
  unlist(lapply(model$layers, function(l) {
    if (inherits(l, "lcnn_model")) open_leaf_layers(l) else list(l)
  }), recursive = FALSE)
}

# Copies the trained weights and optimizer state back into R, so that
# get_weights(), predict() and saveRDS() see them.
sync_from_trainer <- function(model, trainer) {
  sync_weights_from_trainer(model, trainer)
  model$optimizer_state <- c(.trainer_optimizer_state(trainer),
                             list(trainable = training_spec_trainable(model)))
  invisible(model)
}

# The weights alone, which is all get_weights() needs during a fit().
sync_weights_from_trainer <- function(model, trainer) {
  values <- .trainer_parameters(trainer)
  k <- 0
  for (layer in model_leaf_layers(model)) {
    for (w in names(layer$weights)) {
      k <- k + 1
      layer$weights[[w]] <- values[[k]]
    }
    if (length(layer$weights)) layer$version <- next_version()
  }
  model$trainer_key <- engine_key(model)
  invisible(model)
}

# The trainer of the fit() running on `model`, or NULL. While fit() runs,
# the trainer's weights are the model's and R's copy falls behind them with
# every batch; fit() brings it up to date only when it returns, and
# get_weights() and set_weights() in a callback go to the trainer instead.
# fit() records the trainer itself rather than a flag: a model saved during
# a fit() (by callback_model_checkpoint()) reads back with a null pointer
# here, not as a model still training.
fitting_trainer <- function(model) {
  trainer <- model$fitting
  if (is.null(trainer) || .network_is_null(trainer)) NULL else trainer
}
