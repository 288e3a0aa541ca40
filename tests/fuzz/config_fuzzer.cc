// libFuzzer target for the config file parser: any bytes must give entries or one error,
// never a crash, hang or sanitizer report.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/config/config_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = tg::ParseConfigText(text, "fuzz.conf");
  if (r.ok()) {
    for (const auto& e : *r) {
      if (e.key.empty() || e.line <= 0) __builtin_trap();
    }
  } else if (r.error().message.rfind("fuzz.conf:", 0) != 0) {
    __builtin_trap();  // every error names the file and line
  }
  return 0;
}
