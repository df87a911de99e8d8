# Central-difference gradient checks through the engine trainer, in float64.

# The trainer of a compiled model for data (x, y), as fit() would make it.
trainer_for <- function(model, x, y, sample_weight = NULL) {
  plans <- lcnn:::plan_model(model, x, NULL)
  data <- lcnn:::training_data(model, plans, x, y, sample_weight, NULL)
  lcnn:::commit_model(model, plans)
  list(trainer = lcnn:::model_trainer(model, data), data = data)
}

# Compares the engine's gradient of the loss (with penalties) with central
# differences at `coords` random coordinates of every parameter block.
# The engine's gradient is that of a training step; the differences are
# taken of the inference loss (evaluate()) or, with `training = TRUE`, of
# the training loss (batch statistics), read from one fit step on the whole
# batch whose update is then undone (the optimizer's step count advances).
expect_gradients_match <- function(model, x, y, sample_weight = NULL, coords = 12,
                                   eps = 1e-6, tolerance = 1e-6, training = FALSE) {
  t <- trainer_for(model, x, y, sample_weight)
  d <- t$data
  blocks <- lcnn:::model_parameter_blocks(model)
  loss_at <- function(values) {
    lcnn:::.trainer_set_parameters(t$trainer, values)
    if (training) {
      return(lcnn:::.trainer_fit_epoch(t$trainer, d$x, d$y, d$weights, d$n, seq_len(d$n) - 1,
                                       d$n, c(1, 2), 1L, function(...) TRUE, 1L)$loss)
    }
    lcnn:::.trainer_evaluate(t$trainer, d$x, d$y, d$weights, d$n, d$n, 1L)$loss
  }
  lcnn:::.trainer_set_parameters(t$trainer, blocks)
  analytic <- lcnn:::.trainer_gradients(t$trainer, d$x, d$y, d$weights, d$n, c(1, 2), 1L)
  expect_length(analytic, length(blocks))
  for (b in seq_along(blocks)) {
    picks <- sample(length(blocks[[b]]), min(coords, length(blocks[[b]])))
    numeric <- vapply(picks, function(i) {
      up <- blocks; up[[b]][i] <- up[[b]][i] + eps
      down <- blocks; down[[b]][i] <- down[[b]][i] - eps
      (loss_at(up) - loss_at(down)) / (2 * eps)
    }, numeric(1))
    expect_equal(analytic[[b]][picks], numeric, tolerance = tolerance,
                 label = paste("gradient of block", b))
  }
  lcnn:::.trainer_set_parameters(t$trainer, blocks)
  invisible(analytic)
}

# 20 samples of 2 features, classes 0 and 1 in turn, and a softmax dense
# layer compiled for them with sparse targets (drawn in that order).
two_class_task <- function() {
  x <- matrix(runif(40), 20)
  y <- rep(0:1, 10)
  model <- keras_model_sequential(input_shape = 2) %>% layer_dense(2, activation = "softmax")
  model %>% compile(optimizer = "sgd", loss = "sparse_categorical_crossentropy")
  list(x = x, y = y, model = model)
}
