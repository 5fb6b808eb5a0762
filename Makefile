# ortserve: the two commands a newcomer needs are `make run` and `make test`.
BUILD ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
HTTP_PORT ?= 8000
GRPC_PORT ?= 8001
METRICS_PORT ?= 8002

.PHONY: all setup configure build run test test-unit test-integration test-gpu test-deploy image install asan fuzz clean \
  int8-models release setup-arm64 build-arm64 test-arm64 release-arm64

all: build

setup:
	scripts/setup.sh

configure: setup
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS)

build: configure
	cmake --build $(BUILD) -j $(JOBS)

# Builds, then serves the bundled demo models (models/) until Ctrl-C.
run: build
	$(BUILD)/src/server/ortserve --model-repository models \
	  --http-port $(HTTP_PORT) --grpc-port $(GRPC_PORT) --metrics-port $(METRICS_PORT)

# Builds, then runs the whole suite: unit, integration and conformance tests
# (the GPU checks, label `gpu`, need the GPU machine: `make test-gpu`; the
# container checks, label `container`, need the image: `make test-deploy`).
test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600 -LE 'gpu|container'
	@grep -h "ONNX node tests through ortserve" $(BUILD)/Testing/Temporary/LastTest.log || true

test-unit: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -L unit

test-integration: build
	cd $(BUILD) && ctest --output-on-failure -L integration

# A relocatable install tree (docs/deploy.md): make install PREFIX=/opt/ortserve
PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD) --prefix $(PREFIX) --strip

# The INT8 siblings of the bundled text models (docs/int8.md), regenerated
# from the FP32 models and checked against them through ortserve. Run after
# any change to models/sae_classifier or models/text_embedding.
int8-models: configure
	cmake --build $(BUILD) -j $(JOBS) --target ortserve
	BUILD=$(BUILD) scripts/make_int8_models.sh

# The release tarball of this build: $(BUILD)/release/ortserve-<version>-linux-<arch>.tar.gz
# and its .sha256 (the `cmake --install` tree, reproducible; docs/deploy.md).
release: build
	scripts/make_release.sh $(BUILD) $(BUILD)/release

# linux/arm64 (docs/arm64.md): a cross build in $(ARM64_BUILD) on an amd64
# Debian 12 machine (the cross compiler, an arm64 sysroot and ORT's linux/arm64
# library from scripts/setup_arm64.sh), only the server, the CLI and the unit
# tests, without debug info. `make test-arm64` runs the unit tests and the
# server smoke test (tests/arm64/smoke.py) under qemu-user; not part of
# `make test` or .ci/run (a cold cross build takes long on a small machine).
ARM64_BUILD ?= build-arm64
ARM64_CMAKE_FLAGS ?=
# Unit tests that cannot pass under qemu-user without binfmt_misc (docs/arm64.md).
# Left out only where the kernel cannot hand arm64 programs to qemu (binfmt_misc).
ARM64_SYSROOT ?= $(CURDIR)/.deps/sysroot-arm64
ARM64_CTEST_EXCLUDE ?= $(if $(wildcard /proc/sys/fs/binfmt_misc/qemu-aarch64),,$(shell cat tests/arm64/ctest_exclude.txt 2>/dev/null | sed -e '/^\#/d' -e '/^$$/d' | paste -sd'|'))
# After `setup`: the host's protoc, grpc_cpp_plugin, Python and the BERT
# vocabulary serve the cross build and its tests too.
setup-arm64: setup
	scripts/setup_arm64.sh

build-arm64: setup-arm64
	cmake -S . -B $(ARM64_BUILD) -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -DNDEBUG" \
	  "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O2 -DNDEBUG" -DORTSERVE_BUILD_BENCH=OFF -DORTSERVE_UNIT_TESTS_ONLY=ON \
	  $(ARM64_CMAKE_FLAGS)
	nice -n 10 cmake --build $(ARM64_BUILD) -j $(JOBS)

test-arm64: build-arm64
	cd $(ARM64_BUILD) && QEMU_LD_PREFIX=$(ARM64_SYSROOT) nice -n 10 ctest --output-on-failure -j $(JOBS) --timeout 600 -L unit \
	  $(if $(ARM64_CTEST_EXCLUDE),-E '$(ARM64_CTEST_EXCLUDE)')
	nice -n 10 tests/arm64/smoke.py --build $(ARM64_BUILD)

# The arm64 release tarball: $(ARM64_BUILD)/release/ortserve-<version>-linux-aarch64.tar.gz (+ .sha256).
release-arm64: build-arm64
	scripts/make_release.sh $(ARM64_BUILD) $(ARM64_BUILD)/release

# The OCI image from Debian's own tools (mmdebstrap + podman, which it
# installs): localhost/ortserve:<version>-<commit> and :latest.
image: build
	scripts/build_image.sh $(BUILD)

# The deployment checks (label `deploy`): the image under podman (the server,
# the KServe runtime, `podman kube play` of the Kubernetes manifests), the
# rendered manifests, three replicas behind HAProxy. Builds the image first.
test-deploy: image
	cd $(BUILD) && ctest --output-on-failure --timeout 900 -L deploy

# On the GPU machine (ORT_WITH_CUDA=1 scripts/setup.sh first): issue #8's checks.
test-gpu: build
	cd $(BUILD) && ctest --output-on-failure -L gpu

# The suite under AddressSanitizer + UndefinedBehaviorSanitizer.
# ONNX Runtime's own one-off start-up allocation is suppressed (tests/lsan.supp).
asan:
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp UBSAN_OPTIONS=print_stacktrace=1 \
	  $(MAKE) test BUILD=build-asan BUILD_TYPE=Debug CMAKE_FLAGS=-DORTSERVE_SANITIZE=ON

# libFuzzer on the parsers of untrusted bytes (tests/fuzz/): builds them with
# clang, ASan and UBSan in build-fuzz, then runs each for FUZZ_SECONDS from its
# seed corpus. New inputs collect in build-fuzz/corpus/; a crash stops with its
# input in build-fuzz/crashes/ (add it to tests/fuzz/corpus/<target>/ with the fix).
FUZZ_SECONDS ?= 60
FUZZERS = batching_fuzz kserve_json_codec_fuzz grpc_codec_fuzz wordpiece_tokenizer_fuzz bpe_tokenizer_fuzz model_config_fuzz http_server_fuzz credentials_fuzz
fuzz:
	WITH_FUZZ=1 scripts/setup.sh
	CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DORTSERVE_FUZZ=ON -DORTSERVE_TCMALLOC=OFF -DORTSERVE_BUILD_BENCH=OFF
	cmake --build build-fuzz -j $(JOBS) --target $(FUZZERS)
	mkdir -p build-fuzz/crashes
	for f in $(FUZZERS); do \
	  mkdir -p build-fuzz/corpus/$$f && \
	  UBSAN_OPTIONS=halt_on_error=1:suppressions=$(CURDIR)/tests/fuzz/ubsan.supp:print_stacktrace=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	  build-fuzz/tests/fuzz/$$f -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 -timeout=10 \
	    -artifact_prefix=build-fuzz/crashes/$$f- build-fuzz/corpus/$$f tests/fuzz/corpus/$$f || exit 1; \
	done

clean:
	rm -rf $(BUILD) build-asan build-fuzz $(ARM64_BUILD)
