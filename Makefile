# Thin wrapper: the real build is meson + ninja (see meson.build).
#   make run    install what is missing, build, migrate, run the example DAGs
#   make test   the same set-up, then every test tier (plain build, ASan+UBSan, a short fuzz run)
#   make fuzz   every libFuzzer target for FUZZ_SECONDS each (default 60), on a clang build
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
export SLUICE_HOME ?= $(CURDIR)/.sluice
export SLUICE_DAGS ?= $(CURDIR)/dags

.PHONY: all deps build run test test-plain test-asan fuzz clean

all: build

deps:
	@scripts/deps.sh

build: deps
	@if [ ! -f $(BUILD)/build.ninja ]; then meson setup $(BUILD) -Dwerror=true; fi
	@ninja -C $(BUILD)

run: build
	@scripts/run.sh $(BUILD)

test: build
	@scripts/test.sh $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)

fuzz: deps
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh $(FUZZ_BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
