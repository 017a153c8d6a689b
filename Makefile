# Thin wrapper: the real build is meson + ninja (see meson.build).
#   make run    install what is missing, build, migrate, run the example DAGs
#   make test   the same set-up, then every test tier (plain build, then ASan+UBSan)
BUILD      ?= build
ASAN_BUILD ?= build-asan
export SLUICE_HOME ?= $(CURDIR)/.sluice
export SLUICE_DAGS ?= $(CURDIR)/dags

.PHONY: all deps build run test test-plain test-asan clean

all: build

deps:
	@scripts/deps.sh

build: deps
	@if [ ! -f $(BUILD)/build.ninja ]; then meson setup $(BUILD) -Dwerror=true; fi
	@ninja -C $(BUILD)

run: build
	@scripts/run.sh $(BUILD)

test: build
	@scripts/test.sh $(BUILD) $(ASAN_BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
