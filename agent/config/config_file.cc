#include "agent/config/config_file.h"

#include <fstream>
#include <sstream>

namespace tg {
namespace {

std::string_view Trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t\r");
  return s.substr(first, last - first + 1);
}

bool IsKeyChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

// Printable, bounded excerpt of a bad line for an error message.
std::string Excerpt(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 60)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  if (s.size() > 60) out += "...";
  return out;
}

Error LineError(std::string_view source, int line, const std::string& what) {
  return MakeError(ErrorKind::kInvalidArgument,
                   std::string(source) + ":" + std::to_string(line) + ": " + what);
}

}  // namespace

Result<std::vector<ConfigEntry>> ParseConfigText(std::string_view text, std::string_view source) {
  std::vector<ConfigEntry> entries;
  int line_no = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t end = std::min(text.find('\n', pos), text.size());
    const std::string_view raw = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    const std::string_view line = Trim(raw);
    if (line.empty() || line[0] == '#') {
      if (end == text.size()) break;
      continue;
    }
    const auto eq = line.find('=');
    if (eq == std::string_view::npos) {
      return LineError(source, line_no, "expected 'key = value', got '" + Excerpt(line) + "'");
    }
    const std::string_view key = Trim(line.substr(0, eq));
    std::string_view value = Trim(line.substr(eq + 1));
    if (key.empty()) {
      return LineError(source, line_no, "missing key before '=' in '" + Excerpt(line) + "'");
    }
    for (char c : key) {
      if (!IsKeyChar(c)) {
        return LineError(
            source, line_no,
            "'" + Excerpt(key) + "' is not a key: keys are flag names like metrics-listen");
      }
    }
    if (!value.empty() && value.front() == '"') {
      if (value.size() < 2 || value.back() != '"') {
        return LineError(source, line_no,
                         "unterminated quote in the value of '" + std::string(key) + "'");
      }
      value = value.substr(1, value.size() - 2);
    }
    entries.push_back({line_no, std::string(key), std::string(value)});
    if (end == text.size()) break;
  }
  return entries;
}

Result<std::vector<ConfigEntry>> ReadConfigFile(const std::string& path) {
  std::ifstream f(path);
  if (!f) return FromErrno(errno, "cannot read the config file " + path);
  std::stringstream text;
  text << f.rdbuf();
  return ParseConfigText(text.str(), path);
}

}  // namespace tg
