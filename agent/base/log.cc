#include "agent/base/log.h"

#include <bpf/libbpf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
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
  // Most of libbpf's messages already start with "libbpf: "; name the source once.
  constexpr std::string_view kPrefix = "libbpf: ";
  if (line.substr(0, kPrefix.size()) == kPrefix) line.remove_prefix(kPrefix.size());
  Write(ours, std::string(kPrefix).append(line));
  return n;
}

}  // namespace

bool StderrIsJournal(const char* journal_stream) {
  unsigned long long dev = 0, ino = 0;
  if (journal_stream == nullptr || std::sscanf(journal_stream, "%llu:%llu", &dev, &ino) != 2) {
    return false;
  }
  struct stat st {};
  return ::fstat(STDERR_FILENO, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

void SetMaxLevel(Level max) { g_max_level.store(max); }
Level MaxLevel() { return g_max_level.load(); }

void Write(Level level, std::string_view line) {
  if (level > g_max_level.load()) return;
  // Decided once: stderr is the journal for the whole life of the process, or never.
  static const bool kJournal = StderrIsJournal(std::getenv("JOURNAL_STREAM"));
  // One write() per line so concurrent lines never interleave.
  std::string out =
      kJournal ? fmt::format("<{}>{}\n", static_cast<int>(level), line) : fmt::format("{}\n", line);
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
