#' Summarise a model
#'
#' Prints Keras's table: each layer's name and type, output shape (with
#' `NULL` for the batch) and number of parameters, then the totals with their
#' size in memory. `print(model)` shows the same.
#'
#' @param object A built model.
#' @param ... Unused.
#' @return `object`, invisibly.
#' @family models
#' @export
#' @examples
#' model <- keras_model_sequential(input_shape = c(10, 32)) %>%
#'   layer_locally_connected_1d(filters = 64, kernel_size = 3)
#' summary(model)
summary.lcnn_model <- function(object, ...) {
  check_model_built(object, rlang::current_env())
  layers <- object$layers
  batch <- model_batch(object)
  rows <- data.frame(
    layer = vapply(layers, function(l) paste0(l$name, " (", l$type, ")"), character(1)),
    shape = vapply(layers, function(l) format_shape(l$state$output_shape, batch), character(1)),
    params = vapply(layers, function(l) format_count(layer_param_count(l)), character(1))
  )
  head <- c(layer = "Layer (type)", shape = "Output Shape", params = "Param #")
  widths <- vapply(names(head), function(n) max(nchar(c(head[[n]], rows[[n]]))), numeric(1))
  line <- function(layer, shape, params) {
    paste0(" ", formatC(layer, width = -widths[["layer"]]), "   ",
           formatC(shape, width = -widths[["shape"]]), "   ",
           formatC(params, width = widths[["params"]]))
  }
  rule <- function(char) strrep(char, sum(widths) + 7)

  counts <- vapply(layers, layer_param_count, numeric(1))
  trainable <- sum(vapply(layers, layer_trainable_param_count, numeric(1)))
  bytes <- if (model_dtype(object) == "float64") 8 else 4
  total <- function(label, n) paste0(label, format_count(n), " (", format_bytes(n * bytes), ")")

  cat("Model: \"", object$name, "\"\n", rule("_"), "\n",
      line(head[["layer"]], head[["shape"]], head[["params"]]), "\n", rule("="), "\n", sep = "")
  cat(paste0(line(rows$layer, rows$shape, rows$params), "\n"), sep = "")
  cat(rule("="), "\n",
      total("Total params: ", sum(counts)), "\n",
      total("Trainable params: ", trainable), "\n",
      total("Non-trainable params: ", sum(counts) - trainable), "\n",
      rule("_"), "\n", sep = "")
  invisible(object)
}

# Keras's readable memory size: "6.15 MB", "0.00 Byte".
format_bytes <- function(bytes) {
  units <- c("Byte", "KB", "MB", "GB", "TB", "PB")
  i <- 1
  while (bytes >= 1024 && i < length(units)) {
    bytes <- bytes / 1024
    i <- i + 1
  }
  sprintf("%.2f %s", bytes, units[i])
}
