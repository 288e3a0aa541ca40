// Small ASCII text helpers the parsers of names and headers share.
#ifndef TUNNELGUARD_AGENT_BASE_TEXT_H_
#define TUNNELGUARD_AGENT_BASE_TEXT_H_

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

namespace tg {

inline std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

inline std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_BASE_TEXT_H_
