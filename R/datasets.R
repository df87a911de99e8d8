#' Fashion-MNIST
#'
#' Reads the Fashion-MNIST images and labels from the four IDX files
#' (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
#' `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each optionally
#' gzipped) in a local folder, and returns them in keras's shape. Nothing is
#' downloaded: on Debian, `apt-get install dataset-fashion-mnist` installs
#' the files where `path = NULL` looks for them.
#'
#' @param path Folder holding the files; `NULL` for
#'   `/usr/share/datasets/fashion-mnist`.
#' @return `list(train = list(x, y), test = list(x, y))`: `x` an integer
#'   array `(n, 28, 28)` of pixel values 0-255, `y` integer labels 0-9.
#' @family datasets
#' @export
#' @examples
#' if (dir.exists("/usr/share/datasets/fashion-mnist")) {
#'   fashion <- dataset_fashion_mnist()
#'   dim(fashion$train$x)
#' }
dataset_fashion_mnist <- function(path = NULL) {
  call <- rlang::current_env()
  path <- path %||% "/usr/share/datasets/fashion-mnist"
  if (!is.character(path) || length(path) != 1 || is.na(path)) {
    lcnn_abort(c("{.arg path} must be a folder name or NULL.", x = "Got {format_value(path)}."),
               "argument", call = call)
  }
  part <- function(prefix) {
    list(x = read_idx(idx_file(path, paste0(prefix, "-images-idx3-ubyte"), call), call),
         y = read_idx(idx_file(path, paste0(prefix, "-labels-idx1-ubyte"), call), call))
  }
  list(train = part("train"), test = part("t10k"))
}

idx_file <- function(folder, name, call) {
  candidates <- file.path(folder, c(name, paste0(name, ".gz")))
  found <- candidates[file.exists(candidates)]
  if (length(found) == 0) {
    lcnn_abort(c("Fashion-MNIST file {.file {name}} (or {.file {name}.gz}) is not in \\
                  {.path {folder}}.",
                 i = "On Debian: {.code apt-get install dataset-fashion-mnist}; or pass \\
                      {.arg path}, a folder with the four IDX files from \\
                      {.url https://github.com/zalandoresearch/fashion-mnist}."),
               "data", call = call)
  }
  found[1]
}

# An IDX file: magic (0, 0, type 0x08 = unsigned byte, rank), the dims as
# big-endian 32-bit integers, then the bytes in C order.
read_idx <- function(file, call) {
  con <- if (endsWith(file, ".gz")) gzfile(file, "rb") else file(file, "rb")
  on.exit(close(con))
  magic <- readBin(con, "raw", 4)
  if (length(magic) != 4 || magic[1] != 0 || magic[2] != 0 || magic[3] != as.raw(8)) {
    lcnn_abort("{.file {file}} is not an IDX file of unsigned bytes.", "data", call = call)
  }
  rank <- as.integer(magic[4])
  dims <- readBin(con, "integer", rank, size = 4, endian = "big")
  values <- readBin(con, "raw", prod(dims))
  if (length(dims) != rank || length(values) != prod(dims)) {
    lcnn_abort("{.file {file}} is truncated.", "data", call = call)
  }
  values <- as.integer(values)
  if (rank == 1) return(values)
  aperm(array(values, rev(dims)), rev(seq_len(rank)))
}
