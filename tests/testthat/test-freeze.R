# A model with an inner model `sub` (whose dense layer is `d1`) and a dense
# layer of its own.
nested_model <- function() {
  i <- layer_input(shape = 3)
  d1 <- layer_dense(units = 3, name = "d1")
  sub <- keras_model(i, d1(i), name = "sub")
  x <- layer_input(shape = 3)
  outer <- keras_model(x, layer_dense(sub(x), 1, name = "d2"), name = "outer")
  list(outer = outer, sub = sub, d1 = d1)
}

test_that("a frozen model trains none of its layers, whatever their own flags", {
  set.seed(5)
  m <- nested_model()
  m$outer$trainable <- FALSE
  expect_false(m$d1$trainable)
  m$d1$trainable <- TRUE
  out <- capture.output(summary(m$outer))
  expect_true(any(grepl("Trainable params: 0 ", out, fixed = TRUE)))
  expect_true(any(grepl("Non-trainable params: 16 ", out, fixed = TRUE)))
  expect_equal(lcnn:::training_spec_trainable(m$outer), rep(FALSE, 4))
  m$outer %>% compile(optimizer = "sgd", loss = "mse")
  before <- get_weights(m$outer)
  m$outer %>% fit(matrix(runif(12), 4, 3), runif(4), epochs = 1, verbose = 0)
  expect_identical(get_weights(m$outer), before)
})

test_that("a frozen inner model keeps its layers' weights while the outer trains", {
  set.seed(6)
  m <- nested_model()
  m$sub$trainable <- FALSE
  m$d1$trainable <- TRUE
  expect_equal(lcnn:::training_spec_trainable(m$outer), c(FALSE, FALSE, TRUE, TRUE))
  out <- capture.output(summary(m$outer))
  expect_true(any(grepl("Trainable params: 4 ", out, fixed = TRUE)))
  m$outer %>% compile(optimizer = "sgd", loss = "mse")
  before <- get_weights(m$outer)
  m$outer %>% fit(matrix(runif(12), 4, 3), runif(4), epochs = 1, verbose = 0)
  after <- get_weights(m$outer)
  expect_identical(after[1:2], before[1:2])
  expect_false(identical(after[[3]], before[[3]]))
})

test_that("a layer shared by a frozen inner model and the outer one trains", {
  i <- layer_input(shape = 3)
  shared <- layer_dense(units = 3, name = "shared")
  sub <- keras_model(i, shared(i), name = "sub")
  x <- layer_input(shape = 3)
  outer <- keras_model(x, layer_add(list(sub(x), shared(x))))
  sub$trainable <- FALSE
  shared$trainable <- TRUE
  expect_equal(lcnn:::training_spec_trainable(outer), c(TRUE, TRUE))
})

test_that("freeze_weights() freezes the model itself only without from and to", {
  m <- nested_model()
  freeze_weights(m$outer)
  expect_false(m$outer$trainable)
  m$d1$trainable <- TRUE
  expect_equal(lcnn:::training_spec_trainable(m$outer), rep(FALSE, 4))
  # As in R keras, unfreezing part of a model makes the model trainable.
  unfreeze_weights(m$outer, from = "d2")
  expect_true(m$outer$trainable)
  expect_false(m$sub$trainable)
  expect_equal(lcnn:::training_spec_trainable(m$outer), c(FALSE, FALSE, TRUE, TRUE))
  freeze_weights(m$outer)
  freeze_weights(m$outer, to = "sub")
  expect_true(m$outer$trainable)
  expect_equal(lcnn:::training_spec_trainable(m$outer), c(FALSE, FALSE, FALSE, FALSE))
  unfreeze_weights(m$outer)
  expect_equal(lcnn:::training_spec_trainable(m$outer), rep(TRUE, 4))
})

test_that("freezing a model without layers says so", {
  expect_snapshot(error = TRUE, freeze_weights(keras_model_sequential(name = "empty")))
  expect_error(unfreeze_weights(keras_model_sequential(), from = 1), class = "lcnn_error_state")
})
