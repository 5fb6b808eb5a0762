// SPDX-License-Identifier: Apache-2.0
// Runs a fuzz target's inputs through its LLVMFuzzerTestOneInput without
// libFuzzer, so that every build (gcc included) replays the seed corpus and
// the reproducers of bugs the fuzzers found: `<target>_replay DIR_OR_FILE...`.
// A target reports a broken property by trapping, which fails the test.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

bool RunFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    return false;
  }
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  size_t inputs = 0;
  bool ok = true;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path root(argv[i]);
    std::vector<std::filesystem::path> files;
    if (std::filesystem::is_directory(root)) {
      for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
      }
    } else {
      files.push_back(root);
    }
    for (const auto& file : files) {
      ok &= RunFile(file);
      ++inputs;
    }
  }
  // Inputs of no bytes and of one byte: the smallest a fuzzer starts from.
  LLVMFuzzerTestOneInput(nullptr, 0);
  const uint8_t zero = 0;
  LLVMFuzzerTestOneInput(&zero, 1);
  std::printf("replayed %zu inputs\n", inputs);
  return ok && inputs > 0 ? 0 : 1;
}
