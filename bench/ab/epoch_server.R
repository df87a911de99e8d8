# One side of bench/ab/compare.py: builds W7's model (tools/demo_model.R)
# with the lcnn found on R_LIBS, warms it up, prints "ready", then fits one
# epoch for every "go" line on stdin and prints its seconds; any other line
# ends it.
suppressMessages(library(lcnn))
options(lcnn.num_threads = as.integer(Sys.getenv("LCNN_BENCH_THREADS", lcnn_num_threads())))
script <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1])
source(file.path(dirname(script), "..", "..", "tools", "demo_model.R"))
data <- demo_data(as.integer(Sys.getenv("LCNN_AB_SAMPLES", "60000")))
set.seed(2026)
model <- compiled_demo_model()
fit(model, data$x[1:640, , , , drop = FALSE], data$y[1:640], epochs = 1, batch_size = 64,
    verbose = 0)
commands <- file("stdin")
open(commands)
cat("ready\n")
flush(stdout())
while (identical(readLines(commands, n = 1), "go")) {
  seconds <- system.time(fit(model, data$x, data$y, epochs = 1, batch_size = 64,
                             verbose = 0))[["elapsed"]]
  cat(sprintf("%.4f\n", seconds))
  flush(stdout())
}
