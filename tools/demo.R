# make demo: trains a network of locally connected layers on Fashion-MNIST
# (Debian's dataset-fashion-mnist package) with a progress bar, reports the
# test accuracy and writes the training history plot to demo-history.png.
library(lcnn)

set.seed(2026)
started <- Sys.time()
fashion <- dataset_fashion_mnist()
x_train <- array(fashion$train$x / 255, c(60000, 28, 28, 1))
x_test <- array(fashion$test$x / 255, c(10000, 28, 28, 1))

model <- keras_model_sequential(input_shape = c(28, 28, 1), name = "fashion_lc") %>%
  layer_locally_connected_2d(filters = 16, kernel_size = 3, strides = 2, activation = "relu") %>%
  layer_locally_connected_2d(filters = 32, kernel_size = 3, strides = 2, activation = "relu") %>%
  layer_flatten() %>%
  layer_dense(units = 128, activation = "relu") %>%
  layer_dropout(rate = 0.3) %>%
  layer_dense(units = 10, activation = "softmax")
summary(model)

model %>% compile(optimizer = "adam", loss = "sparse_categorical_crossentropy",
                  metrics = "accuracy")
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
