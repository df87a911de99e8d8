# make demo: trains a network of locally connected layers on Fashion-MNIST
# (Debian's dataset-fashion-mnist package) with a progress bar, reports the
# test accuracy and writes the training history plot to demo-history.png.
library(lcnn)

set.seed(2026)
started <- Sys.time()
fashion <- dataset_fashion_mnist()
x_train <- array(fashion$train$x / 255, c(60000, 28, 28, 1))
x_test <- array(fashion$test$x / 255, c(10000, 28, 28, 1))

# The network (two locally connected layers, then dense layers) and its
# compile() settings: tools/demo_model.R, which the benchmark's W7 shares.
script <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])
source(file.path(dirname(script), "demo_model.R"))
model <- compiled_demo_model(name = "fashion_lc")
summary(model)
trained <- system.time(
  history <- model %>% fit(x_train, fashion$train$y, epochs = 14, batch_size = 64,
                           validation_split = 0.1, verbose = 1)
)
scores <- evaluate(model, x_test, fashion$test$y)

grDevices::png("demo-history.png", width = 800, height = 600)
plot(history)
invisible(grDevices::dev.off())

cat(sprintf("\nTest accuracy: %.4f (loss %.4f)\n", scores$accuracy, scores$loss))
cat(sprintf("Training: %.0f s on %d threads; whole demo: %.0f s\n", trained[["elapsed"]],
            lcnn_num_threads(), as.numeric(Sys.time() - started, units = "secs")))
cat("History plot: demo-history.png\n")
