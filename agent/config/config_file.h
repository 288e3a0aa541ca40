// The configuration file of `tunnelguard run`: one setting a line, `key = value`, where every
// key is the name of a long flag without its dashes (`metrics-listen = 127.0.0.1:9612`).
// `#` starts a comment line; blank lines are ignored; a value may be wrapped in double quotes
// (kept verbatim inside). Flags given on the command line override the file.
//
// This layer only splits the text; which keys exist and which values are valid is decided by
// the command's flags themselves, so the file can never accept something the flags refuse.
#ifndef TUNNELGUARD_AGENT_CONFIG_FILE_H_
#define TUNNELGUARD_AGENT_CONFIG_FILE_H_

#include <string>
#include <string_view>
#include <vector>

#include "agent/base/result.h"

namespace tg {

struct ConfigEntry {
  int line = 0;
  std::string key;
  std::string value;
};

// Splits `text` into entries, in order; a key may repeat (whether it may is the flag's to
// say: ApplyConfigFile). `source` (the file name) prefixes every error:
// "tunnelguard.conf:7: expected 'key = value', got 'foo'".
Result<std::vector<ConfigEntry>> ParseConfigText(std::string_view text, std::string_view source);

// Reads and parses a file.
Result<std::vector<ConfigEntry>> ReadConfigFile(const std::string& path);

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_CONFIG_FILE_H_
