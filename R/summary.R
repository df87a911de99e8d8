#' Summarise a model
#'
#' Prints Keras's table: each layer's name and type, output shape (with
#' `NULL` for the batch) and number of parameters, then the totals with their
#' size in memory. `print(model)` shows the same, and the device of a
#' compiled model.
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
  rows <- data.frame(
    layer = vapply(layers, function(l) paste0(l$name, " (", layer_type_name(l), ")"),
                   character(1)),
    shape = vapply(layers, function(l) format_output_shape(l, model_batch(object)), character(1)),
    params = vapply(layers, function(l) format_count(layer_param_count(l)), character(1))
  )
  cat("Model: \"", object$name, "\"\n", sep = "")
  width <- if (is_chain(object)) print_layer_table(rows) else
    print_connected_table(rows, lapply(layers, layer_connections, model = object))
  counts <- unlist(lapply(model_leaf_layers(object), layer_weight_sizes))
  trainable <- training_spec_trainable(object)
  bytes <- if (model_dtype(object) == "float64") 8 else 4
  total <- function(label, n) paste0(label, format_count(n), " (", format_bytes(n * bytes), ")")
  cat(strrep("=", width), "\n",
      total("Total params: ", sum(counts)), "\n",
      total("Trainable params: ", sum(counts[trainable])), "\n",
      total("Non-trainable params: ", sum(counts[!trainable])), "\n",
      strrep("_", width), "\n", sep = "")
  invisible(object)
}

layer_type_name <- function(layer) {
  if (inherits(layer, "lcnn_functional")) "Functional"
  else if (inherits(layer, "lcnn_sequential")) "Sequential"
  else layer$type
}

# Output shapes as keras prints them: a list for input layers and for
# models with several outputs.
format_output_shape <- function(layer, batch) {
  if (inherits(layer, "lcnn_layer_input")) {
    return(paste0("[", format_shape(layer$state$output_shape, layer$input$batch), "]"))
  }
  if (!inherits(layer, "lcnn_model")) return(format_shape(layer$state$output_shape, batch))
  shapes <- vapply(model_output_shapes(layer), format_shape, character(1), batch = batch)
  if (length(shapes) == 1) shapes else paste0("[", paste(shapes, collapse = ", "), "]")
}

# A model keras prints like a sequential one: a chain of single-input calls
# without shared layers (sequential models, and functional ones so shaped).
is_chain <- function(model) {
  if (inherits(model, "lcnn_sequential")) return(TRUE)
  graph <- model$graph
  if (length(graph$inputs) != 1 || length(graph$outputs) != 1) return(FALSE)
  inputs <- lapply(graph$nodes, function(n) n$inputs)
  if (any(lengths(inputs) != 1)) return(FALSE)
  used <- vapply(inputs, function(i) i[[1]]$node$id, numeric(1))
  !anyDuplicated(used) && length(unique_objects(lapply(graph$nodes, function(n) n$layer))) ==
    length(graph$nodes)
}

# The table of a chain: columns as wide as their content. Returns the width.
print_layer_table <- function(rows) {
  head <- c(layer = "Layer (type)", shape = "Output Shape", params = "Param #")
  widths <- vapply(names(head), function(n) max(nchar(c(head[[n]], rows[[n]]))), numeric(1))
  line <- function(layer, shape, params) {
    paste0(" ", formatC(layer, width = -widths[["layer"]]), "   ",
           formatC(shape, width = -widths[["shape"]]), "   ",
           formatC(params, width = widths[["params"]]))
  }
  width <- sum(widths) + 7
  cat(strrep("_", width), "\n", line(head[["layer"]], head[["shape"]], head[["params"]]), "\n",
      strrep("=", width), "\n", sep = "")
  cat(paste0(line(rows$layer, rows$shape, rows$params), "\n"), sep = "")
  width
}

# The table of any other graph, as keras 2 prints it: 98 characters with a
# "Connected to" column, long cells wrapped after "',", a blank line after
# each layer. Returns the width.
print_connected_table <- function(rows, connections) {
  positions <- c(29, 58, 68, 98)
  cells <- cbind(rows$layer, rows$shape, rows$params,
                 vapply(connections, format_connections, character(1)))
  cat(strrep("_", 98), "\n",
      paste0(keras_row(c("Layer (type)", "Output Shape", "Param #", "Connected to"), positions),
             "\n"),
      strrep("=", 98), "\n", sep = "")
  for (i in seq_len(nrow(cells))) {
    cat(paste0(c(keras_row(cells[i, ], positions), strrep(" ", 98)), "\n"), sep = "")
  }
  98
}

# The inputs of each call of `layer` within `model`, as keras names them:
# "<layer>[<call>][<output>]", the call counted over all the layer's calls.
layer_connections <- function(layer, model) {
  nodes <- Filter(function(n) identical(n$layer, layer), model$graph$nodes)
  unlist(lapply(nodes, function(n) {
    vapply(n$inputs, function(t) {
      sprintf("%s[%d][%d]", t$node$layer$name, t$node$call, t$index - 1L)
    }, character(1))
  }))
}

format_connections <- function(x) {
  paste0("[", paste0("'", x, "'", collapse = ", ")[length(x) > 0], "]")
}

# One table row as keras's print_row() writes it: each field cut to its
# column (at the first "),", "},", "]," or "'," when there is one, so lists
# wrap between items), continued on further lines until all is printed.
keras_row <- function(fields, positions) {
  left <- as.character(fields)
  lines <- character()
  while (any(nzchar(left))) {
    line <- ""
    for (col in seq_along(left)) {
      last <- col == length(positions)
      space <- if (last) 0 else 2
      cutoff <- positions[col] - (if (col > 1) positions[col - 1] else 0) - space - !last
      fit <- substr(left[col], 1, cutoff)
      breaks <- vapply(c("),", "},", "],", "',"), function(b) {
        at <- regexpr(b, fit, fixed = TRUE)
        if (at > 0) at - 1 + nchar(b) else NA_real_
      }, numeric(1))
      if (any(!is.na(breaks))) {
        cutoff <- min(breaks, na.rm = TRUE)
        fit <- substr(fit, 1, cutoff)
      }
      line <- paste0(line, if (col == 1) " ", fit, strrep(" ", space))
      left[col] <- substring(left[col], cutoff + 1)
      line <- paste0(line, strrep(" ", max(0, positions[col] - nchar(line))))
    }
    lines <- c(lines, line)
  }
  lines
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
