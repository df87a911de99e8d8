# Initial values: Keras's fans on the Keras-layout shape, the distributions,
# and reproducibility from R's RNG.

kernel_of <- function(..., input_shape = c(12, 10, 3), filters = 8) {
  model <- keras_model_sequential(input_shape = input_shape) %>%
    layer_locally_connected_2d(filters, 3, dtype = "float64", ...)
  w <- get_weights(model)
  list(kernel = w[[1]], bias = if (length(w) > 1) w[[2]])
}

test_that("fans follow Keras on the Keras-layout shape", {
  expect_equal(lcnn:::compute_fans(c(80, 27, 8)), c(fan_in = 80 * 27, fan_out = 80 * 8))
  expect_equal(lcnn:::compute_fans(c(12, 10, 3, 10, 8, 8)),
               c(fan_in = 8 * 12 * 10 * 3 * 10, fan_out = 8 * 12 * 10 * 3 * 10))
  expect_equal(lcnn:::compute_fans(5184), c(fan_in = 5184, fan_out = 5184))
  expect_equal(lcnn:::compute_fans(c(4, 6)), c(fan_in = 4, fan_out = 6))
})

test_that("glorot_uniform's limit depends on the implementation's layout", {
  set.seed(21)
  # 12x10x3 -> 10x8 positions, K*C = 27, F = 8.
  limits <- c(
    sqrt(6 / (80 * 27 + 80 * 8)),               # (P, K*C, F)
    sqrt(6 / (8 * 3600 + 8 * 3600)),            # (H, W, C, OR, OC, F)
    sqrt(6 / (2 * 80 * 27 * 8))                 # 1-D
  )
  for (i in 1:3) {
    w <- kernel_of(implementation = i)$kernel
    connected <- w[w != 0]
    expect_lte(max(abs(connected)), limits[i])
    expect_gt(max(abs(connected)), 0.95 * limits[i])
    expect_equal(var(connected), limits[i]^2 / 3, tolerance = 0.05)
  }
  expect_true(all(kernel_of()$bias == 0))
})

test_that("normal initializers have Keras's standard deviations and truncation", {
  set.seed(22)
  fan_in <- 80 * 27
  he <- kernel_of(kernel_initializer = "he_normal")$kernel
  expect_equal(sd(he), sqrt(2 / fan_in), tolerance = 0.03)
  expect_lte(max(abs(he)), 2 * sqrt(2 / fan_in) / 0.87962566103423978)

  lecun <- kernel_of(kernel_initializer = initializer_lecun_uniform())$kernel
  expect_lte(max(abs(lecun)), sqrt(3 / fan_in))
  expect_equal(sd(lecun), sqrt(1 / fan_in), tolerance = 0.03)

  vs <- kernel_of(kernel_initializer = initializer_variance_scaling(
    scale = 3, mode = "fan_out", distribution = "untruncated_normal"))$kernel
  expect_equal(sd(vs), sqrt(3 / (80 * 8)), tolerance = 0.03)
  expect_gt(max(abs(vs)), 2 * sqrt(3 / (80 * 8)))

  rn <- kernel_of(kernel_initializer = initializer_random_normal(mean = 1, stddev = 0.5))$kernel
  expect_equal(c(mean(rn), sd(rn)), c(1, 0.5), tolerance = 0.03)
  tn <- kernel_of(kernel_initializer = initializer_truncated_normal(stddev = 0.5))$kernel
  expect_lte(max(abs(tn)), 1)
  ru <- kernel_of(kernel_initializer = initializer_random_uniform(2, 3))$kernel
  expect_true(all(ru >= 2 & ru < 3))
})

test_that("constant initializers fill every connected weight", {
  w <- kernel_of(kernel_initializer = "ones", bias_initializer = initializer_constant(0.25))
  expect_true(all(w$kernel == 1))
  expect_true(all(w$bias == 0.25))
  expect_true(all(kernel_of(kernel_initializer = "Zeros")$kernel == 0))
  # Same padding: taps outside the input stay zero whatever the initializer.
  # 12 x 10 positions of 9 taps; connected taps per axis: 12 * 3 - 2 rows,
  # 10 * 3 - 2 columns; 3 channels, 8 filters.
  s <- kernel_of(kernel_initializer = "ones", padding = "same")$kernel
  expect_equal(sum(s == 1), 34 * 28 * 3 * 8)
  expect_equal(sum(s == 0), 120 * 9 * 3 * 8 - 34 * 28 * 3 * 8)
})

test_that("set.seed() reproduces initial weights, and seed = fixes them", {
  set.seed(23); a <- kernel_of()$kernel
  set.seed(23); b <- kernel_of()$kernel
  c1 <- kernel_of()$kernel
  expect_identical(a, b)
  expect_false(identical(a, c1))
  init <- initializer_glorot_normal(seed = 7)
  expect_identical(kernel_of(kernel_initializer = init)$kernel,
                   kernel_of(kernel_initializer = init)$kernel)
})

test_that("initial weights do not depend on the thread count", {
  # 30x30x4 -> 28x28 positions, K*C = 36, F = 8: 225,792 weights, drawn in
  # four blocks; float32, so drawn, rounded and stored by the engine alone.
  kernel_on <- function(threads, init) {
    old <- options(lcnn.num_threads = threads)
    on.exit(options(old))
    set.seed(24)
    model <- keras_model_sequential(input_shape = c(30, 30, 4)) %>%
      layer_locally_connected_2d(8, 3, kernel_initializer = init)
    get_weights(model)[[1]]
  }
  for (init in c("glorot_uniform", "he_normal")) {
    one <- kernel_on(1, init)
    expect_identical(kernel_on(2, init), one)
    expect_identical(kernel_on(3, init), one)
    expect_identical(as.vector(one), lcnn:::.round_to_dtype(as.vector(one), "float32"))
    expect_gt(length(unique(one[seq(1, length(one), by = 1000)])), 200)
  }
})

test_that("initializer names follow Keras, in snake or Camel case", {
  expect_equal(lcnn:::check_initializer("GlorotUniform"), initializer_glorot_uniform())
  expect_equal(lcnn:::check_initializer("he_normal"), initializer_he_normal())
  expect_equal(lcnn:::check_initializer("zero"), initializer_zeros())
  expect_equal(lcnn:::check_initializer("RandomNormal"), initializer_random_normal())
  expect_snapshot(print(initializer_random_uniform(-1, 1, seed = 3)))
})

test_that("bad initializer arguments raise classed errors", {
  expect_error(initializer_random_normal(stddev = 0), class = "lcnn_error_argument")
  expect_error(initializer_random_uniform(1, 0), class = "lcnn_error_argument")
  expect_error(initializer_variance_scaling(mode = "fan_mid"), class = "lcnn_error_argument")
  expect_error(initializer_variance_scaling(distribution = "cauchy"),
               class = "lcnn_error_argument")
  expect_error(initializer_he_normal(seed = -1), class = "lcnn_error_argument")
  expect_error(initializer_constant("a"), class = "lcnn_error_argument")
  expect_snapshot(error = TRUE, {
    initializer_random_uniform(minval = 1, maxval = 0)
    initializer_variance_scaling(mode = "fan_mid")
  })
})
