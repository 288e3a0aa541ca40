#include "agent/enforce/policy_wx.h"

#include "agent/enforce/observe_hooks.h"
#include "agent/enforce/policy_abi_check.h"
#include "bpf/policy_wx.h"
#include "policy_wx.skel.h"

namespace tg {

template <>
void SkeletonDeleter<policy_wx>::operator()(policy_wx* skel) const {
  policy_wx__destroy(skel);
}

Result<PolicyObject> LoadWxPolicy(const PolicySpec& spec, Mechanism m) {
  const std::string_view name = PolicyName(PolicyKind::kWxMemory);
  Skeleton<policy_wx> skel(policy_wx__open());
  if (!skel) return FromLibbpf(-errno, "cannot open the wx_memory BPF object");
  const ObservePlan plan = m == Mechanism::kObserve
                               ? PlanObserve(PolicyKind::kWxMemory, spec.observe_sys_exit_calls)
                               : ObservePlan{};
  skel->rodata->tg_wx_sys_exit_calls = plan.sys_exit_calls;
  if (auto st = m == Mechanism::kObserve
                    ? SelectObservePrograms(skel->obj, PolicyKind::kWxMemory, plan)
                    : SelectPrograms(skel->obj, m, name);
      !st.ok()) {
    return st.error();
  }
  if (auto st = LoadObject(skel->obj, m, name); !st.ok()) return st.error();
  const tg_wx_config cfg{ModeToAbi(spec.mode),
                         MechanismToAbi(m),
                         {},
                         {spec.observe_seccomp ? 1u : 0u, plan.sys_exit_calls, 0, 0}};
  if (auto st = WriteConfig(skel->maps.tg_wx_cfg, &cfg, sizeof(cfg), name); !st.ok()) {
    return st.error();
  }
  bpf_object* obj = skel->obj;
  return PolicyObject(PolicyKind::kWxMemory, m, std::move(skel), obj);
}

std::string WxDetailName(uint32_t detail) {
  switch (detail) {
    case TG_WX_MMAP:
      return "mmap";
    case TG_WX_MPROTECT:
      return "mprotect";
    case TG_WX_SHMAT:
      return "shmat";
    case TG_WX_PROC_MEM:
      return "proc_mem";
    case TG_WX_PTRACE_READ:
      return "ptrace_read";
    case TG_WX_MMAP_WX:
      return "mmap_wx";
    case TG_WX_MMAP_IMPLIED_X:
      return "mmap_implied_exec";
    case TG_WX_MMAP_WRITABLE_FILE:
      return "mmap_exec_writable_file";
    case TG_WX_MPROTECT_WX:
      return "mprotect_wx";
    case TG_WX_MPROTECT_ADD_X:
      return "mprotect_add_exec";
    case TG_WX_SHMAT_EXEC:
      return "shmat_exec";
    case TG_WX_SHMAT_IMPLIED_X:
      return "shmat_implied_exec";
    case TG_WX_PROC_MEM_WRITE:
      return "proc_mem_write";
    case TG_WX_PTRACE_ATTACH:
      return "ptrace_attach";
    case TG_WX_PTRACE_TRACEME:
      return "ptrace_traceme";
    default:
      return "wx_" + std::to_string(detail);
  }
}

}  // namespace tg
