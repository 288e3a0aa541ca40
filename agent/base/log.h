// Logging for a journald world: one line an event on stderr. When stderr is the journal
// (systemd sets JOURNAL_STREAM=DEV:INO of the stream it connected, sd_journal_stream_fd(3)),
// each line is prefixed with its syslog priority (<3> error … <7> debug, sd-daemon.h), which
// journald turns into PRIORITY=; on a terminal, a pipe or a file the lines are plain. libbpf's
// own messages go through the same sink, prefixed "libbpf: " once.
#ifndef TUNNELGUARD_AGENT_LOG_H_
#define TUNNELGUARD_AGENT_LOG_H_

#include <fmt/core.h>

#include <string_view>

namespace tg::log {

enum class Level { kError = 3, kWarning = 4, kNotice = 5, kInfo = 6, kDebug = 7 };

// Messages above `max` are dropped (default kInfo).
void SetMaxLevel(Level max);
Level MaxLevel();
void Write(Level level, std::string_view line);

// Whether stderr is the stream `journal_stream` (JOURNAL_STREAM's "DEV:INO") names.
bool StderrIsJournal(const char* journal_stream);

// Routes libbpf's print callback into Write(): its warnings at kWarning, info/debug at kDebug.
void RouteLibbpf();

template <typename... Args>
void Error(fmt::format_string<Args...> f, Args&&... args) {
  Write(Level::kError, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void Warning(fmt::format_string<Args...> f, Args&&... args) {
  Write(Level::kWarning, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void Notice(fmt::format_string<Args...> f, Args&&... args) {
  Write(Level::kNotice, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void Info(fmt::format_string<Args...> f, Args&&... args) {
  Write(Level::kInfo, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void Debug(fmt::format_string<Args...> f, Args&&... args) {
  Write(Level::kDebug, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace tg::log

#endif  // TUNNELGUARD_AGENT_LOG_H_
