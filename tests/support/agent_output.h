// Reading what the agent shows a user, for tests: one series of a /metrics body, and the
// denials its (rate-limited) log accounts for.
#ifndef TUNNELGUARD_TESTS_SUPPORT_AGENT_OUTPUT_H_
#define TUNNELGUARD_TESTS_SUPPORT_AGENT_OUTPUT_H_

#include <cstdint>
#include <sstream>
#include <string>
#include <utility>

namespace tg::testing {

// The value of one series in a /metrics body (-1 when absent).
inline double Metric(const std::string& body, const std::string& series) {
  const auto at = body.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(body.substr(at + series.size() + 2));
}

// Denials as the agent's log accounts for them: every line about a denial stands for one, plus
// the "(N similar lines suppressed)" it carries; a "N denial lines suppressed" line for N.
// Returns {lines, denials accounted for}.
inline std::pair<int, uint64_t> LoggedDenials(const std::string& log) {
  std::istringstream in(log);
  int lines = 0;
  uint64_t denials = 0;
  for (std::string line; std::getline(in, line);) {
    const auto summary = line.find(" denial lines suppressed by rate limiting");
    const bool denial = line.find("would deny ") != std::string::npos ||
                        line.find("denied by systemd's seccomp ") != std::string::npos ||
                        line.find(": denied ") != std::string::npos;
    if (summary != std::string::npos) {
      denials += std::stoull(line.substr(line.rfind(' ', summary - 1) + 1));
    } else if (denial) {
      denials += 1;
      if (const auto s = line.find(" similar lines suppressed)"); s != std::string::npos) {
        denials += std::stoull(line.substr(line.rfind('(', s) + 1));
      }
    } else {
      continue;
    }
    ++lines;
  }
  return {lines, denials};
}

}  // namespace tg::testing

#endif  // TUNNELGUARD_TESTS_SUPPORT_AGENT_OUTPUT_H_
