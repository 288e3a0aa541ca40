#include "agent/enforce/pin_layout.h"

#include <bpf/bpf.h>
#include <dirent.h>
#include <linux/magic.h>
#include <sys/statfs.h>

#include <algorithm>
#include <memory>

#include "agent/base/unique_fd.h"
#include "bpf/policy_families.h"
#include "bpf/policy_wx.h"

namespace tg {

const PinManifest& ManifestFor(PolicyKind kind) {
  // Names are the BPF objects' own (bpf/policy_*.bpf.c); a new hook adds its program here.
  static const PinManifest kFamilies{{"tg_fam_sock", "tg_fam_send", "tg_fam_pair_c"},
                                     {"tg_fam_gsock", "tg_fam_gsend", "tg_fam_gpair"},
                                     {{"socket", TG_OBS_SOCKET, "tg_fam_obs_sock"},
                                      {"socketpair", TG_OBS_SOCKETPAIR, "tg_fam_obs_pair"}},
                                     "tg_fam_obs",
                                     "tg_fam_cfg",
                                     "tg_fam_count",
                                     "tg_fam_drops",
                                     "tg_fam_events",
                                     "tg_fam_canary",
                                     "tg_fam_cgrp"};
  static const PinManifest kWx{
      {"tg_wx_mmap", "tg_wx_mprot", "tg_wx_shmat", "tg_wx_fopen", "tg_wx_ptrace", "tg_wx_traceme"},
      {"tg_wx_gmmap", "tg_wx_gmprot", "tg_wx_gshmat", "tg_wx_gfopen", "tg_wx_gptrace",
       "tg_wx_gtrme"},
      {{"mmap", TG_OBS_MMAP, "tg_wx_obs_mmap"},
       {"mprotect", TG_OBS_MPROTECT, "tg_wx_obs_mprot"},
       {"pkey_mprotect", TG_OBS_PKEY_MPROTECT, "tg_wx_obs_pkey"},
       {"shmat", TG_OBS_SHMAT, "tg_wx_obs_shmat"}},
      "tg_wx_obs",
      "tg_wx_cfg",
      "tg_wx_count",
      "tg_wx_drops",
      "tg_wx_events",
      "tg_wx_canary",
      "tg_wx_cgrp"};
  return kind == PolicyKind::kAddressFamilies ? kFamilies : kWx;
}

std::vector<std::string> PinManifest::ProgramsFor(Mechanism m, uint32_t sys_exit_calls) const {
  if (m == Mechanism::kLsmCgroup) return programs;
  if (m == Mechanism::kLsmGlobal) return global_programs;
  std::vector<std::string> out;
  for (const ObserveHook& h : observe_hooks) {
    if ((h.bit & sys_exit_calls) == 0) out.push_back(h.program);
  }
  if ((sys_exit_calls & ObservedCalls()) != 0) out.push_back(observe_fallback);
  return out;
}

std::vector<std::string> PinManifest::AllPrograms() const {
  std::vector<std::string> all = programs;
  all.insert(all.end(), global_programs.begin(), global_programs.end());
  for (const ObserveHook& h : observe_hooks) all.push_back(h.program);
  all.push_back(observe_fallback);
  return all;
}

uint32_t PinManifest::ObservedCalls() const {
  uint32_t bits = 0;
  for (const ObserveHook& h : observe_hooks) bits |= h.bit;
  return bits;
}

Result<PinnedMap> OpenPinnedMap(const std::string& path) {
  PinnedMap m;
  m.fd = UniqueFd(bpf_obj_get(path.c_str()));
  if (!m.fd.valid()) return FromErrno(errno, "cannot open " + path);
  uint32_t len = sizeof(m.info);
  if (bpf_obj_get_info_by_fd(m.fd.get(), &m.info, &len) != 0) {
    return FromErrno(errno, "cannot inspect " + path);
  }
  return m;
}

Status CheckPinnedAbi(const std::string& dir, PolicyKind kind) {
  const PinManifest& m = ManifestFor(kind);
  const bool families = kind == PolicyKind::kAddressFamilies;
  struct Expected {
    const std::string& map;
    uint32_t value_size;  // 0: not checked
    uint32_t max_entries;
  };
  const Expected expected[] = {
      {m.config_map, families ? uint32_t{sizeof(tg_fam_config)} : uint32_t{sizeof(tg_wx_config)},
       1},
      {m.counters_map, sizeof(uint64_t),
       families ? uint32_t{TG_FAM_COUNTERS} : uint32_t{TG_ACTIONS} * uint32_t{TG_WX_DETAILS}},
      {m.canary_map, sizeof(uint64_t),
       families ? uint32_t{TG_FAM_CANARY_COUNTERS} : uint32_t{TG_WX_CANARY_COUNTERS}},
  };
  for (const Expected& e : expected) {
    const std::string path = dir + "/" + e.map;
    auto map = OpenPinnedMap(path);
    if (!map.ok()) return map.error();
    const bpf_map_info& info = map->info;
    if (info.value_size != e.value_size || info.max_entries != e.max_entries) {
      return MakeError(ErrorKind::kInternal,
                       path + " has " + std::to_string(info.max_entries) + " entries of " +
                           std::to_string(info.value_size) + " bytes, this tunnelguard uses " +
                           std::to_string(e.max_entries) + " of " + std::to_string(e.value_size) +
                           " (pinned by another version)");
    }
  }
  return Status::Ok();
}

std::string TargetDir(const std::string& base, uint64_t cgroup_id) {
  return base + "/" + std::to_string(cgroup_id);
}

std::string PolicyDir(const std::string& base, uint64_t cgroup_id, PolicyKind kind) {
  return TargetDir(base, cgroup_id) + "/" + std::string(PolicyName(kind));
}

std::string LinkPinName(const std::string& program) { return "link_" + program; }

Status CheckOnBpffs(const std::string& dir) {
  std::string probe = dir;
  struct statfs fs {};
  while (::statfs(probe.c_str(), &fs) != 0) {
    if (errno != ENOENT) return FromErrno(errno, "cannot inspect " + probe);
    const size_t slash = probe.find_last_of('/');
    if (slash == std::string::npos || probe == "/") break;
    probe = slash == 0 ? "/" : probe.substr(0, slash);
  }
  if (fs.f_type == BPF_FS_MAGIC) return Status::Ok();
  const std::string mount_point = dir.rfind("/sys/fs/bpf", 0) == 0 ? "/sys/fs/bpf" : probe;
  return MakeError(ErrorKind::kUnsupported,
                   "bpffs is not mounted at " + mount_point + " (" + dir +
                       " would not be on a bpf filesystem); mount it with 'mount -t bpf bpf " +
                       mount_point + "' or pass --bpffs-dir under a bpffs mount");
}

std::vector<uint32_t> PinnedProgramIds(const std::string& base, uint64_t cgroup_id) {
  std::vector<uint32_t> ids;
  for (PolicyKind kind : kAllPolicyKinds) {
    const std::string dir = PolicyDir(base, cgroup_id, kind);
    for (const auto& program : ManifestFor(kind).AllPrograms()) {
      UniqueFd link(bpf_obj_get((dir + "/" + LinkPinName(program)).c_str()));
      if (!link.valid()) continue;  // this mechanism's links are not the pinned ones
      bpf_link_info info{};
      uint32_t len = sizeof(info);
      if (bpf_obj_get_info_by_fd(link.get(), &info, &len) == 0) ids.push_back(info.prog_id);
    }
  }
  return ids;
}

std::vector<uint64_t> PinnedTargets(const std::string& base) {
  std::vector<uint64_t> ids;
  struct DirCloser {
    void operator()(DIR* d) const { ::closedir(d); }
  };
  std::unique_ptr<DIR, DirCloser> d(::opendir(base.c_str()));
  if (!d) return ids;
  while (dirent* e = ::readdir(d.get())) {
    const std::string name = e->d_name;
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    ids.push_back(std::stoull(name));
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

}  // namespace tg
