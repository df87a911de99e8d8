# Progress of fit(): a cli progress bar through each epoch (verbose = 1),
# then one line per epoch (verbose 1 and 2).

format_epoch_values <- function(values) {
  paste(paste0(names(values), ": ", formatC(values, digits = 4, format = "f")), collapse = " - ")
}

# Callbacks for one epoch: update(batch, loss, metrics) for the engine (TRUE
# to go on), called every `every` batches, and done(values, elapsed).
epoch_progress <- function(epoch, epochs, steps, metric_labels, verbose) {
  header <- sprintf("Epoch %d/%d", epoch, epochs)
  bar <- NULL
  update <- function(batch, loss, metrics) TRUE
  if (verbose == 1) {
    running <- ""
    bar <- cli::cli_progress_bar(
      total = steps, clear = TRUE, .auto_close = FALSE,
      format = paste(header, "{cli::pb_bar} {cli::pb_current}/{cli::pb_total}",
                     "ETA {cli::pb_eta} {running}")
    )
    update <- function(batch, loss, metrics) {
      running <<- format_epoch_values(stats::setNames(c(loss, metrics), c("loss", metric_labels)))
      cli::cli_progress_update(id = bar, set = batch)
      TRUE
    }
  }
  done <- function(values, elapsed) {
    if (!is.null(bar)) cli::cli_progress_done(id = bar)
    if (verbose > 0) {
      cat(sprintf("%s - %d/%d - %.0fs - %s\n", header, steps, steps,
                  as.numeric(elapsed, units = "secs"), format_epoch_values(values)))
    }
  }
  list(update = update, every = max(1L, steps %/% 100L),
       done = done)
}
