#' @keywords internal
"_PACKAGE"

#' @useDynLib lcnn, .registration = TRUE
#' @importFrom Rcpp sourceCpp
#' @importFrom rlang %||% .data
#' @importFrom utils .DollarNames
NULL

#' Pipe operator
#'
#' Re-exported from magrittr, as keras does, so `model %>% layer_...()` works
#' after `library(lcnn)` alone.
#'
#' @name %>%
#' @rdname pipe
#' @keywords internal
#' @export
#' @importFrom magrittr %>%
#' @usage lhs \%>\% rhs
#' @param lhs A value or the magrittr placeholder.
#' @param rhs A function call using the magrittr semantics.
#' @return The result of calling `rhs(lhs)`.
NULL
