# Runs the testthat suite against the installed package and ends with the
# line "N passed, N failed, N skipped" (counting expectations); exits 1 on
# any failure or error.
Sys.setenv(NOT_CRAN = "true")
library(testthat)
library(lcnn)

results <- as.data.frame(test_dir("tests/testthat", package = "lcnn",
                                  load_package = "installed", stop_on_failure = FALSE,
                                  reporter = ProgressReporter$new(show_praise = FALSE)))
passed <- sum(results$passed)
failed <- sum(results$failed) + sum(results$error)
skipped <- sum(results$skipped)
cat(sprintf("%d passed, %d failed, %d skipped\n", passed, failed, skipped))
quit(status = if (failed > 0) 1 else 0)
