#include "agent/base/log.h"

#include <bpf/libbpf.h>
#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <string>

namespace tg::log {
namespace {

std::atomic<Level> g_max_level{Level::kInfo};

int LibbpfPrint(enum libbpf_print_level level, const char* format, va_list args) {
  const Level ours = level == LIBBPF_WARN ? Level::kWarning : Level::kDebug;
  if (ours > g_max_level.load()) return 0;
  char buf[1024];
  const int n = std::vsnprintf(buf, sizeof(buf), format, args);
  if (n <= 0) return 0;
  std::string_view line(
      buf, static_cast<size_t>(n) < sizeof(buf) ? static_cast<size_t>(n) : sizeof(buf) - 1);
  while (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  Write(ours, std::string("libbpf: ").append(line));
  return n;
}

}  // namespace

void SetMaxLevel(Level max) { g_max_level.store(max); }
Level MaxLevel() { return g_max_level.load(); }

void Write(Level level, std::string_view line) {
  if (level > g_max_level.load()) return;
  // One write() per line so concurrent lines never interleave.
  std::string out = fmt::format("<{}>{}\n", static_cast<int>(level), line);
  const char* p = out.data();
  size_t left = out.size();
  while (left > 0) {
    const ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) return;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

void RouteLibbpf() { libbpf_set_print(LibbpfPrint); }

}  // namespace tg::log
