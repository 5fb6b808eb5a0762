# SPDX-License-Identifier: Apache-2.0
# Cross build for linux/arm64 on an amd64 Debian 12 machine (docs/arm64.md):
#   scripts/setup_arm64.sh
#   cmake -S . -B build-arm64 -G Ninja \
#     -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake
# Debian's cross compiler (g++-aarch64-linux-gnu), the arm64 libraries from the
# sysroot scripts/setup_arm64.sh unpacks, ONNX Runtime's linux/arm64 build, and
# the host's own (amd64) protoc and grpc_cpp_plugin. Tests run under
# qemu-aarch64-static through CMAKE_CROSSCOMPILING_EMULATOR.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

get_filename_component(_ortserve_root "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)
set(ORTSERVE_ARM64_SYSROOT "${_ortserve_root}/.deps/sysroot-arm64" CACHE PATH
    "arm64 sysroot (scripts/setup_arm64.sh)")
set(ONNXRUNTIME_ROOT "${_ortserve_root}/.deps/onnxruntime-arm64" CACHE PATH
    "ONNX Runtime install prefix (include/ + lib/), linux/arm64")
if(NOT EXISTS "${ORTSERVE_ARM64_SYSROOT}/usr/include/aarch64-linux-gnu")
  message(FATAL_ERROR "No arm64 sysroot at ${ORTSERVE_ARM64_SYSROOT}: run scripts/setup_arm64.sh")
endif()
set(CMAKE_SYSROOT "${ORTSERVE_ARM64_SYSROOT}")

# Libraries, headers and CMake packages from the sysroot; programs (protoc,
# grpc_cpp_plugin, python3) from the host.
set(CMAKE_FIND_ROOT_PATH "${ORTSERVE_ARM64_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${ORTSERVE_ARM64_SYSROOT}")
set(ENV{PKG_CONFIG_LIBDIR}
    "${ORTSERVE_ARM64_SYSROOT}/usr/lib/aarch64-linux-gnu/pkgconfig:${ORTSERVE_ARM64_SYSROOT}/usr/share/pkgconfig")
# The sysroot's shared libraries link against each other by soname.
set(CMAKE_EXE_LINKER_FLAGS_INIT
    "-Wl,-rpath-link,${ORTSERVE_ARM64_SYSROOT}/usr/lib/aarch64-linux-gnu")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "${CMAKE_EXE_LINKER_FLAGS_INIT}")

# Run target binaries (tests, gtest_discover_tests) under user-mode emulation,
# with the sysroot as the root for the dynamic loader and its libraries.
find_program(ORTSERVE_QEMU_AARCH64 qemu-aarch64-static NO_CMAKE_FIND_ROOT_PATH)
if(ORTSERVE_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${ORTSERVE_QEMU_AARCH64};-L;${ORTSERVE_ARM64_SYSROOT}")
endif()
