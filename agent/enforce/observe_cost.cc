#include "agent/enforce/observe_cost.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstring>

#include "agent/enforce/pin_layout.h"
#include "agent/enforce/policy_abi_check.h"
#include "bpf/policy_families.h"
#include "bpf/policy_wx.h"

namespace tg {
namespace {

double NsPerCall(int calls) {
  const auto t0 = std::chrono::steady_clock::now();
  // The raw system call: glibc could one day answer getppid() without entering the kernel.
  for (int i = 0; i < calls; ++i) ::syscall(SYS_getppid);
  const std::chrono::duration<double, std::nano> d = std::chrono::steady_clock::now() - t0;
  return d.count() / calls;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

Result<ObserveCost> MeasureObserveCost(std::vector<PolicyObject>& objects, int cgroup_fd,
                                       int rounds, int calls) {
  std::vector<double> bare, on;
  for (int r = 0; r < rounds; ++r) {
    bare.push_back(NsPerCall(calls));
    for (PolicyObject& obj : objects) {
      if (auto st = obj.AttachToCgroup(cgroup_fd); !st.ok()) {
        for (PolicyObject& o : objects) o.Detach();
        return st.error();
      }
    }
    on.push_back(NsPerCall(calls));
    for (PolicyObject& obj : objects) obj.Detach();
  }
  return ObserveCost{Median(bare), Median(on)};
}

Status RecordObserveCost(const std::vector<PolicyObject>& objects, const ObserveCost& cost) {
  for (const PolicyObject& obj : objects) {
    const std::string& config = ManifestFor(obj.kind()).config_map;
    const bool families = obj.kind() == PolicyKind::kAddressFamilies;
    for (const auto& [name, map] : obj.Maps()) {
      if (name != config) continue;
      tg_fam_config fam{};
      tg_wx_config wx{};
      void* value = families ? static_cast<void*>(&fam) : static_cast<void*>(&wx);
      const size_t size = families ? sizeof(fam) : sizeof(wx);
      tg_observe_state& observe = families ? fam.observe : wx.observe;
      const uint32_t key = 0;
      if (const int err = bpf_map__lookup_elem(map, &key, sizeof(key), value, size, 0); err != 0) {
        return FromLibbpf(err, "cannot read " + name);
      }
      observe.cost_bare_ps = static_cast<uint64_t>(cost.bare_ns * 1000);
      observe.cost_on_ps = static_cast<uint64_t>(cost.observed_ns * 1000);
      if (const int err = bpf_map__update_elem(map, &key, sizeof(key), value, size, BPF_EXIST);
          err != 0) {
        return FromLibbpf(err, "cannot write " + name);
      }
    }
  }
  return Status::Ok();
}

}  // namespace tg
