// Loader for bpf/policy_wx.bpf.c: MemoryDenyWriteExecute= as a BPF-LSM policy.
#ifndef TUNNELGUARD_AGENT_POLICY_WX_H_
#define TUNNELGUARD_AGENT_POLICY_WX_H_

#include <string>

#include "agent/base/result.h"
#include "agent/enforce/policy.h"
#include "agent/enforce/policy_object.h"

namespace tg {

// Opens, selects the programs of `m`, loads, and writes the mode into the config map.
Result<PolicyObject> LoadWxPolicy(const PolicySpec& spec, Mechanism m);

// "mmap_wx", "mprotect_add_exec", … for an enum tg_wx_detail value.
std::string WxDetailName(uint32_t detail);

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_POLICY_WX_H_
