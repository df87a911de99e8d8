# Set-up, build and checks. Every target installs what is missing first.
R ?= R
RSCRIPT ?= Rscript

.PHONY: deps install test demo check document bench cpp-test clean

deps:
	@sh tools/install-deps.sh

install: deps
	$(R) CMD INSTALL --preclean --no-multiarch .

test: install
	$(RSCRIPT) tools/run-tests.R

demo: install
	$(RSCRIPT) tools/demo.R

document: deps
	$(RSCRIPT) -e 'Rcpp::compileAttributes(); roxygen2::roxygenise()'
	rm -f src/*.o src/*.so src/engine/*.o src/cuda/*.o

check: deps
	rm -rf lcnn_*.tar.gz lcnn.Rcheck
	$(R) CMD build .
	_R_CHECK_SYSTEM_CLOCK_=0 $(R) CMD check --no-manual lcnn_*.tar.gz
	@if grep -q "^\* checking .*\.\.\. *\(WARNING\|ERROR\)" lcnn.Rcheck/00check.log; then \
	  echo "R CMD check reported a WARNING or ERROR"; exit 1; fi

bench: install
	$(RSCRIPT) bench/run.R

cpp-test:
	$(MAKE) -C tests/cpp test

clean:
	rm -rf lcnn_*.tar.gz lcnn.Rcheck src/*.o src/*.so src/engine/*.o src/cuda/*.o tests/cpp/build
