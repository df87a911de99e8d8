test_that("regularizers and constraints keep Keras's defaults", {
  expect_equal(unclass(regularizer_l1()), list(l1 = 0.01, l2 = 0))
  expect_equal(unclass(regularizer_l2(0.5)), list(l1 = 0, l2 = 0.5))
  expect_equal(unclass(regularizer_l1_l2(l2 = 0.2)), list(l1 = 0.01, l2 = 0.2))
  # keras3's argument names.
  expect_equal(regularizer_l1(l1 = 0.3), regularizer_l1(0.3))
  expect_equal(regularizer_l2(l2 = 0.4), regularizer_l2(l = 0.4))
  expect_error(regularizer_l2(l = 0.1, l2 = 0.2), class = "lcnn_error_argument")
  expect_equal(constraint_maxnorm()$args, list(max_value = 2, axis = 0L))
  expect_equal(constraint_unitnorm(axis = c(0, 1))$args, list(axis = c(0L, 1L)))
  expect_equal(constraint_minmaxnorm()$args,
               list(min_value = 0, max_value = 1, rate = 1, axis = 0L))
  expect_equal(constraint_nonneg()$name, "nonneg")
  expect_snapshot({
    regularizer_l1_l2()
    constraint_maxnorm(3)
    constraint_nonneg()
  })
})

test_that("bad regularizer and constraint arguments raise classed errors", {
  expect_error(regularizer_l2("a"), class = "lcnn_error_argument")
  # A negative penalty would drive the loss to minus infinity.
  expect_snapshot(error = TRUE, regularizer_l2(-10))
  expect_error(regularizer_l1_l2(l2 = -1), class = "lcnn_error_argument")
  expect_error(regularizer_l1(l1 = -0.5), class = "lcnn_error_argument")
  expect_equal(regularizer_l1_l2(0, 0)$l2, 0)
  expect_snapshot(error = TRUE, layer_dense(units = 2, kernel_regularizer = 3))
  expect_snapshot(error = TRUE, layer_dense(units = 2, bias_constraint = "nonneg"))
  expect_error(constraint_maxnorm(-1), class = "lcnn_error_argument")
  expect_error(constraint_maxnorm(axis = 0.5), class = "lcnn_error_argument")
  expect_error(constraint_minmaxnorm(min_value = 2, max_value = 1),
               class = "lcnn_error_argument")
  expect_error(layer_locally_connected_1d(filters = 1, kernel_size = 1,
                                          bias_constraint = regularizer_l1()),
               class = "lcnn_error_argument")
})
