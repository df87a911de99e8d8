# make demo: the seeds' two-layer locally connected model, its summary, and
# a timed prediction on a batch of 64 images.
library(lcnn)

set.seed(2026)
cat("Building the model (32x32x3 -> 64 filters 3x3 -> 32 filters 3x3)\n")
built <- system.time({
  model <- keras_model_sequential(input_shape = c(32, 32, 3), name = "demo") %>%
    layer_locally_connected_2d(filters = 64, kernel_size = c(3, 3), activation = "relu") %>%
    layer_locally_connected_2d(filters = 32, kernel_size = c(3, 3))
})
summary(model)

x <- array(runif(64 * 32 * 32 * 3), dim = c(64, 32, 32, 3))
first <- system.time(y <- predict(model, x, batch_size = 64))
again <- replicate(5, system.time(predict(model, x, batch_size = 64))[["elapsed"]])

flops <- 2 * 64 * (30 * 30 * 27 * 64 + 28 * 28 * 576 * 32)
cat(sprintf("\nOutput: %s, mean %.4f\n", paste(dim(y), collapse = " x "), mean(y)))
cat(sprintf("Model creation:            %6.3f s\n", built[["elapsed"]]))
cat(sprintf("First predict (64 images): %6.3f s\n", first[["elapsed"]]))
cat(sprintf("Predict, median of 5:      %6.3f s  (%.1f GFLOP/s on %d threads)\n",
            median(again), flops / median(again) / 1e9, lcnn_num_threads()))
