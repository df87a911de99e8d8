write_idx <- function(path, values, dims) {
  con <- gzfile(path, "wb")
  writeBin(as.raw(c(0, 0, 8, length(dims))), con)
  writeBin(as.integer(dims), con, size = 4, endian = "big")
  # C order: the last axis fastest.
  flat <- if (length(dims) == 1) values else as.vector(aperm(values, rev(seq_along(dims))))
  writeBin(as.raw(flat), con)
  close(con)
}

test_that("dataset_fashion_mnist() reads IDX files into keras's shapes", {
  dir <- withr::local_tempdir()
  images <- array(sample(0:255, 3 * 28 * 28, replace = TRUE), c(3, 28, 28))
  labels <- c(9L, 0L, 4L)
  for (prefix in c("train", "t10k")) {
    write_idx(file.path(dir, paste0(prefix, "-images-idx3-ubyte.gz")), images, dim(images))
    write_idx(file.path(dir, paste0(prefix, "-labels-idx1-ubyte.gz")), labels, 3)
  }
  data <- dataset_fashion_mnist(dir)
  expect_named(data, c("train", "test"))
  expect_named(data$train, c("x", "y"))
  expect_identical(data$train$x, images)
  expect_identical(data$test$y, labels)
})

test_that("missing or broken files give a classed error saying how to get them", {
  dir <- withr::local_tempdir()
  expect_error(dataset_fashion_mnist(dir), class = "lcnn_error_data")
  writeLines("not idx", file.path(dir, "train-images-idx3-ubyte"))
  expect_error(dataset_fashion_mnist(dir), class = "lcnn_error_data")
  expect_snapshot(error = TRUE, dataset_fashion_mnist("/nonexistent/fashion"))
})

test_that("the Debian package's files read when installed", {
  skip_if_not(dir.exists("/usr/share/datasets/fashion-mnist"))
  data <- dataset_fashion_mnist()
  expect_equal(dim(data$train$x), c(60000L, 28L, 28L))
  expect_equal(dim(data$test$x), c(10000L, 28L, 28L))
  expect_equal(sort(unique(data$train$y)), 0:9)
  expect_equal(range(data$test$x), c(0L, 255L))
})
