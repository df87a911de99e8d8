test_that("summary() prints Keras's table with separators", {
  k_clear_session()
  model <- keras_model_sequential(input_shape = c(32, 32, 3)) %>%
    layer_locally_connected_2d(filters = 64, kernel_size = c(3, 3)) %>%
    layer_locally_connected_2d(filters = 32, kernel_size = c(3, 3), trainable = FALSE)
  out <- capture.output(returned <- summary(model))
  expect_identical(returned, model)
  expect_true(any(grepl("(NULL, 30, 30, 64)", out, fixed = TRUE)))
  expect_true(any(grepl("1,612,800", out, fixed = TRUE)))
  expect_true(any(grepl("Non-trainable params: 14,475,776 (55.22 MB)", out, fixed = TRUE)))
  expect_snapshot(summary(model))

  one_d <- keras_model_sequential(input_shape = c(10, 32), dtype = "float64",
                                  name = "genomic") %>%
    layer_locally_connected_1d(filters = 64, kernel_size = 3) %>%
    layer_locally_connected_1d(filters = 32, kernel_size = 3)
  expect_snapshot(summary(one_d))
})

test_that("memory sizes read like Keras's", {
  expect_equal(lcnn:::format_bytes(0), "0.00 Byte")
  expect_equal(lcnn:::format_bytes(6451200), "6.15 MB")
  expect_equal(lcnn:::format_bytes(2048), "2.00 KB")
})
