# Agreement with real tf-keras: fixtures written by tools/make-keras-fixtures.py.

# The locally connected fixtures; other layers' (bn_*, ...) have their own tests.
fixture_paths <- list.files(test_path("fixtures"), pattern = "^lc[12]d_.*\\.json$",
                            full.names = TRUE)

layer_from_fixture <- function(f) {
  cfg <- f$config
  make <- if (f$layer == "LocallyConnected1D") layer_locally_connected_1d else
    layer_locally_connected_2d
  keras_model_sequential(input_shape = unlist(f$input$shape)[-1]) %>%
    make(filters = cfg$filters, kernel_size = unlist(cfg$kernel_size),
         strides = unlist(cfg$strides), padding = cfg$padding,
         data_format = cfg$data_format, implementation = cfg$implementation,
         use_bias = cfg$use_bias, activation = cfg$activation, dtype = cfg$dtype)
}

test_that("there are fixtures for every layer, implementation and data format", {
  skip_if_not_installed("jsonlite")
  configs <- lapply(fixture_paths, function(p) read_fixture(p)$config)
  seen <- unique(vapply(configs, function(c) {
    paste(c$implementation, c$data_format, c$padding)
  }, character(1)))
  expect_gte(length(fixture_paths), 60)
  expected <- c(paste(1:3, "channels_last valid"), paste(1:3, "channels_first valid"),
                paste(2:3, "channels_last same"), paste(2:3, "channels_first same"))
  expect_setequal(seen, expected)
  # Each of them with a geometry that takes the engine's direct kernels and
  # one that takes its GEMMs.
  kernels <- vapply(fixture_paths, function(p) {
    layer <- layer_from_fixture(read_fixture(p))$layers[[1]]
    lcnn:::.lc_direct_kernels(layer$state$geometry)
  }, logical(1))
  modes <- vapply(configs, function(c) paste(c$implementation, c$data_format, c$padding),
                  character(1))
  expect_setequal(modes[kernels], expected)
  expect_setequal(modes[!kernels], expected)
})

test_that("outputs, weight shapes and parameter counts match tf-keras", {
  skip_if_not_installed("jsonlite")
  for (path in fixture_paths) {
    f <- read_fixture(path)
    model <- layer_from_fixture(f)
    label <- basename(path)
    expect_equal(count_params(model), f$count_params, label = label)
    shapes <- lapply(get_weights(model), function(w) if (is.null(dim(w))) length(w) else dim(w))
    expect_equal(shapes, lapply(f$weight_arrays, function(w) dim(w)), label = label)
    set_weights(model, f$weight_arrays)
    y <- predict(model, f$input_array)
    expect_equal(dim(y), dim(f$output_array), label = label)
    tolerance <- if (f$config$dtype == "float64") 1e-10 else 1e-5
    expect_equal(as.vector(y), as.vector(f$output_array), tolerance = tolerance, label = label)
  }
})
