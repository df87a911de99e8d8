# The demo's network, in one place for tools/demo.R (make demo) and the
# benchmark's W7 (bench/run.R, bench/threads.R, bench/ab/epoch_server.R):
# two locally connected layers, then dense layers, compiled with Adam.
compiled_demo_model <- function(name = NULL) {
  model <- keras_model_sequential(input_shape = c(28, 28, 1), name = name, dtype = "float32") %>%
    layer_locally_connected_2d(filters = 16, kernel_size = 3, strides = 2, activation = "relu") %>%
    layer_locally_connected_2d(filters = 32, kernel_size = 3, strides = 2, activation = "relu") %>%
    layer_flatten() %>%
    layer_dense(units = 128, activation = "relu") %>%
    layer_dropout(rate = 0.3) %>%
    layer_dense(units = 10, activation = "softmax")
  model %>% compile(optimizer = "adam", loss = "sparse_categorical_crossentropy",
                    metrics = "accuracy")
  model
}

# The first n Fashion-MNIST training images, scaled to [0, 1], and their
# labels.
demo_data <- function(n) {
  fashion <- dataset_fashion_mnist()
  list(x = array(fashion$train$x[seq_len(n), , ] / 255, c(n, 28, 28, 1)),
       y = fashion$train$y[seq_len(n)])
}
