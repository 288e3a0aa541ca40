#include "agent/enforce/unix_notify.h"

#include <cstring>

#include "bpf/policy_families.h"

namespace tg {
namespace {

// sizeof(sa_family_t): the kernel's address length counts the family field.
constexpr uint32_t kFamilyBytes = 2;

}  // namespace

Status NotifySocketToAbi(std::string_view address, tg_unix_notify& out) {
  out = {};
  const bool abstract = !address.empty() && address.front() == '@';
  const auto bad = [&](const std::string& why) {
    return MakeError(ErrorKind::kInvalidArgument,
                     "notify socket '" + std::string(address) + "': " + why +
                         "; give an absolute path (/run/systemd/notify) or @NAME for an "
                         "abstract socket, as in $NOTIFY_SOCKET");
  };
  if (address.empty() || (!abstract && address.front() != '/')) {
    return bad("neither an absolute path nor @NAME");
  }
  if (address.size() == 1) return bad("names no socket");
  if (address.find('\0') != std::string_view::npos) return bad("holds a NUL byte");
  // A path's NUL, or the abstract name's leading NUL instead of '@', share sun_path's 108.
  if (address.size() > TG_NOTIFY_PATH_MAX - 1) {
    return bad("longer than " + std::to_string(TG_NOTIFY_PATH_MAX - 1) + " bytes");
  }
  std::memcpy(out.path, address.data(), address.size());
  if (abstract) {
    out.path[0] = '\0';
    out.len = kFamilyBytes + static_cast<uint32_t>(address.size());
  } else {
    out.len = kFamilyBytes + static_cast<uint32_t>(address.size()) + 1;  // with its NUL
  }
  return Status::Ok();
}

std::string NotifySocketFromAbi(const tg_unix_notify& in) {
  if (in.len <= kFamilyBytes || in.len > kFamilyBytes + TG_NOTIFY_PATH_MAX) return "";
  const size_t n = in.len - kFamilyBytes;
  if (in.path[0] == '\0') return "@" + std::string(in.path + 1, n - 1);
  return std::string(in.path, n > 0 && in.path[n - 1] == '\0' ? n - 1 : n);
}

}  // namespace tg
