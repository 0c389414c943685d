# SPDX-License-Identifier: MIT
# Thin front for CMake presets. README.md names the two commands that matter: run and test.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all build run test test-release test-asan deps deps-test fuzz bench format clean

all: build

deps:
	@scripts/deps.sh build

deps-test:
	@scripts/deps.sh test

build: deps
	@cmake --preset release >/dev/null
	@cmake --build --preset release -j $(JOBS)

# Starts the archive on its defaults (data in ./vetpacs-data, DICOM port 11112, AE VETPACS);
# Ctrl-C stops it. Options go through ARGS, e.g. make run ARGS='--dicom-port 104'.
run: build
	./build/vetpacs serve $(ARGS)

test: deps-test
	@$(MAKE) --no-print-directory test-release
	@$(MAKE) --no-print-directory test-asan

test-release:
	@cmake --preset release >/dev/null
	@cmake --build --preset release -j $(JOBS)
	@ctest --preset release -j $(JOBS)

test-asan:
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan -j $(JOBS)
	@ctest --preset asan -j $(JOBS)

# Long fuzzing runs: make fuzz FUZZ_SECONDS=600
FUZZ_SECONDS ?= 60
fuzz: deps-test
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz -j $(JOBS)
	@for t in $(patsubst fuzz/fuzz_%.c,%,$(wildcard fuzz/fuzz_*.c)); do \
	  mkdir -p build-fuzz/corpus/$$t; \
	  ./build-fuzz/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) build-fuzz/corpus/$$t fuzz/seeds/$$t || exit 1; \
	done

bench: build
	bench/parse.sh
	bench/ingest.sh
	bench/query.sh

format:
	clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h' 'fuzz/*.c')

clean:
	rm -rf build build-dev build-asan build-fuzz
