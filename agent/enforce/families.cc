#include "agent/enforce/families.h"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cctype>

#include "agent/base/text.h"
#include "bpf/policy_families.h"

namespace tg {
namespace {

// Numbers from include/linux/socket.h; stable kernel ABI.
constexpr std::array<FamilyName, 45> kFamilies{{
    {"unix", 1},        {"inet", 2},     {"ax25", 3},     {"ipx", 4},       {"appletalk", 5},
    {"netrom", 6},      {"bridge", 7},   {"atmpvc", 8},   {"x25", 9},       {"inet6", 10},
    {"rose", 11},       {"decnet", 12},  {"netbeui", 13}, {"security", 14}, {"key", 15},
    {"netlink", 16},    {"packet", 17},  {"ash", 18},     {"econet", 19},   {"atmsvc", 20},
    {"rds", 21},        {"sna", 22},     {"irda", 23},    {"pppox", 24},    {"wanpipe", 25},
    {"llc", 26},        {"ib", 27},      {"mpls", 28},    {"can", 29},      {"tipc", 30},
    {"bluetooth", 31},  {"iucv", 32},    {"rxrpc", 33},   {"isdn", 34},     {"phonet", 35},
    {"ieee802154", 36}, {"caif", 37},    {"alg", 38},     {"nfc", 39},      {"vsock", 40},
    {"kcm", 41},        {"qipcrtr", 42}, {"smc", 43},     {"xdp", 44},      {"mctp", 45},
}};
static_assert(kFamilies.back().family < TG_FAM_OTHER, "every family has its own counter slot");

// The unix-notify mode's counter and event details, past the family slots.
constexpr std::array<FamilyName, 3> kUnixNotifyDetails{{
    {"unix_notify", TG_FAM_UNIX_NOTIFY},
    {"unix_peer", TG_FAM_UNIX_PEER},
    {"unix_socketpair", TG_FAM_UNIX_PAIR},
}};
static_assert(TG_FAM_UNIX_PAIR < TG_FAM_SLOTS, "every reason has its own counter slot");

int LookUp(std::string name) {
  if (name == kUnixNotifyToken) return TG_FAM_UNIX_NOTIFY_BIT;
  if (name.rfind("af_", 0) == 0) name = name.substr(3);
  if (name == "local") name = "unix";
  if (name == "route") name = "netlink";
  for (const auto& f : kFamilies) {
    if (f.name == name) return f.family;
  }
  return -1;
}

std::string ValidNames() {
  std::string out;
  for (const auto& f : kFamilies) out += (out.empty() ? "" : ", ") + std::string(f.name);
  return out + ", " + std::string(kUnixNotifyToken) + " (AF_UNIX for sd_notify only)";
}

}  // namespace

std::span<const FamilyName> KnownFamilies() { return kFamilies; }

Result<uint64_t> ParseFamilies(std::string_view list) {
  const std::string all = Lower(Trim(list));
  if (all == "none") return uint64_t{0};
  if (all.empty()) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "empty family list; give names like --families inet,inet6 (or 'none' to "
                     "deny every family)");
  }
  uint64_t mask = 0;
  std::string_view rest = all;
  while (true) {
    const size_t comma = rest.find(',');
    const std::string name(Trim(rest.substr(0, comma)));
    const int family = LookUp(name);
    if (family < 0) {
      return MakeError(ErrorKind::kInvalidArgument,
                       (name.empty() ? std::string("empty family name in '") + all + "'"
                                     : "unknown address family '" + name + "'") +
                           "; valid families: " + ValidNames());
    }
    mask |= uint64_t{1} << family;
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  if (((mask >> TG_FAM_UNIX_NOTIFY_BIT) & 1) != 0 && ((mask >> AF_UNIX) & 1) != 0) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "'unix' and 'unix-notify' in '" + all +
                         "': unix allows every AF_UNIX use, unix-notify only sd_notify's; "
                         "give one of them");
  }
  return mask;
}

std::string FamilyToName(int family) {
  for (const auto& f : kFamilies) {
    if (f.family == family) return std::string(f.name);
  }
  for (const auto& f : kUnixNotifyDetails) {
    if (f.family == family) return std::string(f.name);
  }
  return "af_" + std::to_string(family);
}

std::string FormatFamilies(uint64_t mask) {
  std::string out;
  for (int f = 0; f < TG_FAM_OTHER; ++f) {
    if ((mask >> f) & 1) out += (out.empty() ? "" : ",") + FamilyToName(f);
  }
  if ((mask >> TG_FAM_UNIX_NOTIFY_BIT) & 1) {
    out += (out.empty() ? "" : ",") + std::string(kUnixNotifyToken);
  }
  return out.empty() ? "none" : out;
}

bool UnixNotifyOn(uint64_t mask) {
  return ((mask >> TG_FAM_UNIX_NOTIFY_BIT) & 1) != 0 && ((mask >> AF_UNIX) & 1) == 0;
}

std::span<const FamilyName> UnixNotifyDetails() { return kUnixNotifyDetails; }

}  // namespace tg
