# The training history fit() returns, shaped like keras's:
# list(params = list(verbose, epochs, steps), metrics = list(loss = ..., ...)).

new_history <- function(epochs, steps, verbose) {
  structure(list(params = list(verbose = verbose, epochs = epochs, steps = steps),
                 metrics = list(), epoch = integer()),
            class = "lcnn_history")
}

record_epoch <- function(history, epoch, values) {
  for (name in names(values)) history$metrics[[name]] <- c(history$metrics[[name]], values[[name]])
  history$epoch <- c(history$epoch, as.integer(epoch))
  history
}

#' Training history
#'
#' `fit()` returns the loss and metrics of each epoch. `print()` shows the
#' final epoch's values, `as.data.frame()` gives one row per epoch and
#' metric (columns `epoch`, `value`, `metric`, `data`, as keras), and
#' `plot()` draws training against validation for each metric, with ggplot2
#' when it is installed and base graphics otherwise.
#'
#' @param x A history from [fit()].
#' @param ... Unused.
#' @return `print()` and `plot()`: `x` (or the ggplot object), invisibly;
#'   `as.data.frame()`: a data frame.
#' @family training
#' @name history
#' @export
print.lcnn_history <- function(x, ...) {
  if (length(x$epoch) == 0) {
    cat("No epochs trained.\n")
    return(invisible(x))
  }
  values <- vapply(x$metrics, function(v) v[length(v)], numeric(1))
  cat("Final epoch (plot to see history):\n")
  labels <- formatC(names(values), width = max(nchar(names(values))))
  cat(paste0(labels, ": ", formatC(values, digits = 4, format = "g"), "\n"), sep = "")
  invisible(x)
}

#' @rdname history
#' @param row.names,optional Unused; for the generic.
#' @export
as.data.frame.lcnn_history <- function(x, row.names = NULL, optional = FALSE, ...) {
  names <- names(x$metrics) %||% character()
  validation <- startsWith(names, "val_")
  metric <- sub("^val_", "", names)
  levels <- unique(metric)
  rows <- lapply(seq_along(names), function(i) {
    data.frame(epoch = x$epoch, value = x$metrics[[i]],
               metric = factor(metric[i], levels = levels),
               data = factor(if (validation[i]) "validation" else "training",
                             levels = c("training", "validation")))
  })
  out <- do.call(rbind, rows)
  if (is.null(out)) {
    out <- data.frame(epoch = integer(), value = numeric(), metric = factor(),
                      data = factor(levels = c("training", "validation")))
  }
  rownames(out) <- NULL
  out
}

#' @rdname history
#' @param y Unused.
#' @export
plot.lcnn_history <- function(x, y, ...) {
  df <- as.data.frame(x)
  if (nrow(df) == 0) {
    lcnn_abort("The history has no epochs to plot.", "state")
  }
  if (requireNamespace("ggplot2", quietly = TRUE)) {
    p <- ggplot2::ggplot(df, ggplot2::aes(x = .data$epoch, y = .data$value,
                                          colour = .data$data)) +
      ggplot2::geom_line() + ggplot2::geom_point() +
      ggplot2::facet_wrap(~metric, ncol = 1, scales = "free_y") +
      ggplot2::labs(x = "epoch", y = NULL, colour = NULL)
    print(p)
    return(invisible(p))
  }
  plot_history_base(df)
  invisible(x)
}

# One panel per metric, training and validation as lines, in base graphics.
plot_history_base <- function(df) {
  metrics <- levels(df$metric)
  old <- graphics::par(mfrow = c(length(metrics), 1), mar = c(4, 4, 1.5, 1))
  on.exit(graphics::par(old))
  for (m in metrics) {
    part <- df[df$metric == m, ]
    graphics::plot(part$epoch, part$value, type = "n", xlab = "epoch", ylab = m, main = m)
    for (d in levels(part$data)) {
      rows <- part$data == d
      if (any(rows)) {
        graphics::lines(part$epoch[rows], part$value[rows], type = "b",
                        col = if (d == "training") "black" else "red")
      }
    }
    graphics::legend("topright", legend = unique(as.character(part$data)),
                     col = c("black", "red")[seq_along(unique(part$data))], lty = 1,
                     bty = "n")
  }
}
