library(testthat)
library(lcnn)

test_check("lcnn")
