# Timing script for bench/NOTES.md, "Threads and subnormals":
#   Rscript bench/threads.R w7 THREADS EPOCHS   one W7 epoch on 6,000 images, repeated
#   Rscript bench/threads.R tiny THREADS        fit() of a 4-8-1 dense model, 5 epochs of 200 rows
# Prints each repeat's elapsed seconds; w7 also each epoch's CPU seconds
# (user + system, which waiting for a busy core does not inflate) and the
# share of Adam's slot values that are subnormal as float32 after the last
# epoch. The "busy" numbers in
# NOTES.md ran these while `Rscript -e 'repeat{}'` held a core.
library(lcnn)
args <- commandArgs(TRUE)
options(lcnn.num_threads = as.integer(args[2]))
set.seed(2026)
if (args[1] == "w7") {
  script <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])
  source(file.path(dirname(script), "..", "tools", "demo_model.R"))
  data <- demo_data(6000)
  x <- data$x
  y <- data$y
  model <- compiled_demo_model()
  seconds <- vapply(seq_len(as.integer(args[3])), function(e) {
    t <- system.time(fit(model, x, y, epochs = 1, batch_size = 64, verbose = 0))
    c(t[["elapsed"]], t[["user.self"]] + t[["sys.self"]])
  }, numeric(2))
  slots <- unlist(model$optimizer_state$slots)
  subnormal <- mean(slots != 0 & abs(slots) < 2^-126)
  cat(sprintf("w7 threads=%s epochs, elapsed (s): %s; CPU (s): %s; subnormal Adam slots: %.1f%%\n",
              args[2], paste(sprintf("%.2f", seconds[1, ]), collapse = " "),
              paste(sprintf("%.2f", seconds[2, ]), collapse = " "), 100 * subnormal))
} else {
  x <- matrix(runif(200 * 4), 200, 4)
  y <- x %*% c(1, -1, 0.5, 2)
  model <- keras_model_sequential(input_shape = 4) %>%
    layer_dense(8, activation = "relu") %>%
    layer_dense(1)
  model %>% compile(optimizer = "adam", loss = "mse")
  fit(model, x, y, epochs = 1, batch_size = 32, verbose = 0)
  seconds <- replicate(5, system.time(fit(model, x, y, epochs = 5, batch_size = 32,
                                          verbose = 0))[["elapsed"]])
  cat(sprintf("tiny threads=%s fit (s): %s\n", args[2],
              paste(sprintf("%.3f", seconds), collapse = " ")))
}
