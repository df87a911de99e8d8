#!/bin/sh
# Installs the Debian packages lcnn needs to build, test, check and demo,
# skipping those already installed. Run as root (or with sudo available).
set -e
PACKAGES="r-base-dev r-cran-rcpp r-cran-rcppeigen r-cran-cli r-cran-generics r-cran-rlang r-cran-magrittr \
r-cran-testthat r-cran-withr dataset-fashion-mnist r-cran-jsonlite r-cran-knitr r-cran-rmarkdown r-cran-roxygen2 r-cran-pkgbuild r-cran-ggplot2 \
pandoc qpdf"
missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "Installing:$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
