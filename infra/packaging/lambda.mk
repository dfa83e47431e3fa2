# Included by every Makefile that `sam build` (BuildMethod: makefile) and infra/packaging/package.py run:
# the Lambda architecture to build for and the pip options that fetch CPython 3.12 manylinux wheels for it.
#
# LAMBDA_ARCHITECTURE is x86_64 (default) or arm64, from make's command line or the environment. SAM passes a
# Makefile nothing but ARTIFACTS_DIR, so an arm64 stack is built with
#     LAMBDA_ARCHITECTURE=arm64 sam build --parameter-overrides Architecture=arm64
# (infra/packaging/package.py --arch arm64 passes it itself).
LAMBDA_ARCHITECTURE ?= x86_64
ifeq ($(LAMBDA_ARCHITECTURE),x86_64)
WHEEL_MACHINE := x86_64
# binutils' strip reads x86_64 objects only; llvm-strip reads both.
STRIP ?= strip
else ifeq ($(LAMBDA_ARCHITECTURE),arm64)
WHEEL_MACHINE := aarch64
STRIP ?= llvm-strip
else
$(error LAMBDA_ARCHITECTURE must be x86_64 or arm64, not "$(LAMBDA_ARCHITECTURE)")
endif
PIP_TARGET := --platform manylinux_2_28_$(WHEEL_MACHINE) --platform manylinux2014_$(WHEEL_MACHINE) --implementation cp \
	--python-version 3.12 --only-binary=:all: --disable-pip-version-check --quiet
