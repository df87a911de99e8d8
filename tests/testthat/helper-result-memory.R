# predict()'s results of 2 MiB or more, and fit()'s copies of the data, come
# from memory that lcnn maps apart from R's heap and pools between calls
# (src/rcpp_result_memory.cpp). These helpers set up the tests that watch it.

skip_unless_results_mapped <- function() {
  skip_if_not(.result_memory()[["mapped"]] == 1, "results come from R's heap on this system")
}

# A model whose predict() on large_result_input() makes a 31.5 MB result
# (120 samples x 2048 positions x 16 filters, doubles).
large_result_model <- function() {
  keras_model_sequential(input_shape = c(2048, 1)) %>%
    layer_locally_connected_1d(16, 1)
}
large_result_input <- function() array(1, c(120, 2048, 1))
large_result_bytes <- 8 * 120 * 2048 * 16

# The pool goes back at R's second collection with no predict() or fit()
# call in between.
collect_twice <- function() {
  invisible(gc())
  invisible(gc())
}
