#include "agent/enforce/pinned_config.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <sys/file.h>

#include "agent/base/unique_fd.h"
#include "agent/enforce/pin_layout.h"

namespace tg {
namespace {

// The policy directory, open and flock'ed (LOCK_EX or LOCK_SH) until destruction.
Result<UniqueFd> LockPolicyDir(const std::string& dir, int how) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return FromErrno(errno, "cannot open " + dir);
  while (::flock(fd.get(), how) != 0) {
    if (errno != EINTR) return FromErrno(errno, "cannot lock " + dir);
  }
  return fd;
}

// The config map, checked to hold exactly this build's struct.
Result<UniqueFd> OpenConfig(const std::string& dir, PolicyKind kind) {
  const std::string path = dir + "/" + ManifestFor(kind).config_map;
  auto map = OpenPinnedMap(path);
  if (!map.ok()) return map.error();
  const bpf_map_info& info = map->info;
  const uint32_t want =
      kind == PolicyKind::kAddressFamilies ? sizeof(tg_fam_config) : sizeof(tg_wx_config);
  if (info.value_size != want) {
    return MakeError(ErrorKind::kInvalidArgument, path + " holds " +
                                                      std::to_string(info.value_size) +
                                                      "-byte configs, this "
                                                      "build " +
                                                      std::to_string(want) +
                                                      ": pinned by another tunnelguard "
                                                      "version; detach and attach again");
  }
  return std::move(map->fd);
}

void* Value(PinnedConfig& c) {
  return c.families() ? static_cast<void*>(&c.fam) : static_cast<void*>(&c.wx);
}

Result<PinnedConfig> Lookup(int fd, const std::string& dir, PolicyKind kind) {
  PinnedConfig c;
  c.kind = kind;
  const uint32_t key = 0;
  if (bpf_map_lookup_elem(fd, &key, Value(c)) != 0) {
    return FromErrno(errno, "cannot read the config in " + dir);
  }
  return c;
}

}  // namespace

Result<PinnedConfig> ReadPinnedConfig(const std::string& policy_dir, PolicyKind kind) {
  auto lock = LockPolicyDir(policy_dir, LOCK_SH);
  if (!lock.ok()) return lock.error();
  auto fd = OpenConfig(policy_dir, kind);
  if (!fd.ok()) return fd.error();
  return Lookup(fd->get(), policy_dir, kind);
}

Result<PinnedConfig> ChangePinnedConfig(const std::string& policy_dir, PolicyKind kind,
                                        const std::function<void(PinnedConfig&)>& change) {
  auto lock = LockPolicyDir(policy_dir, LOCK_EX);
  if (!lock.ok()) return lock.error();
  auto fd = OpenConfig(policy_dir, kind);
  if (!fd.ok()) return fd.error();
  auto c = Lookup(fd->get(), policy_dir, kind);
  if (!c.ok()) return c.error();
  change(*c);
  const uint32_t key = 0;
  if (bpf_map_update_elem(fd->get(), &key, Value(*c), BPF_EXIST) != 0) {
    return FromErrno(errno, "cannot write the config in " + policy_dir);
  }
  return c;
}

}  // namespace tg
