#include "agent/enforce/policy.h"

#include "bpf/policy_abi.h"

namespace tg {

std::string_view PolicyName(PolicyKind kind) {
  switch (kind) {
    case PolicyKind::kAddressFamilies:
      return "address_families";
    case PolicyKind::kWxMemory:
      return "wx_memory";
  }
  return "unknown";
}

std::optional<PolicyKind> PolicyFromName(std::string_view name) {
  for (PolicyKind k : kAllPolicyKinds) {
    if (PolicyName(k) == name) return k;
  }
  return std::nullopt;
}

std::string_view ModeName(Mode mode) { return mode == Mode::kEnforce ? "enforce" : "audit"; }

Result<Mode> ParseMode(std::string_view name) {
  if (name == "enforce") return Mode::kEnforce;
  if (name == "audit") return Mode::kAudit;
  return MakeError(ErrorKind::kInvalidArgument,
                   "unknown mode '" + std::string(name) + "'; use --mode enforce or --mode audit");
}

std::string_view MechanismName(Mechanism m) {
  switch (m) {
    case Mechanism::kLsmCgroup:
      return "lsm_cgroup";
    case Mechanism::kLsmGlobal:
      return "lsm_global";
    case Mechanism::kObserve:
      return "observe";
  }
  return "unknown";
}

Result<Mechanism> ParseMechanism(std::string_view name) {
  if (name == "lsm_cgroup" || name == "lsm-cgroup") return Mechanism::kLsmCgroup;
  if (name == "lsm_global" || name == "lsm-global") return Mechanism::kLsmGlobal;
  if (name == "observe") return Mechanism::kObserve;
  return MakeError(ErrorKind::kInvalidArgument, "unknown mechanism '" + std::string(name) +
                                                    "'; use lsm-cgroup, lsm-global or observe");
}

uint32_t ModeToAbi(Mode mode) { return mode == Mode::kEnforce ? TG_MODE_ENFORCE : TG_MODE_AUDIT; }

std::optional<Mode> ModeFromAbi(uint32_t v) {
  if (v == TG_MODE_ENFORCE) return Mode::kEnforce;
  if (v == TG_MODE_AUDIT) return Mode::kAudit;
  return std::nullopt;
}

uint32_t MechanismToAbi(Mechanism m) {
  switch (m) {
    case Mechanism::kLsmCgroup:
      return TG_MECH_LSM_CGROUP;
    case Mechanism::kLsmGlobal:
      return TG_MECH_LSM_GLOBAL;
    case Mechanism::kObserve:
      return TG_MECH_OBSERVE;
  }
  return 0;
}

std::optional<Mechanism> MechanismFromAbi(uint32_t v) {
  if (v == TG_MECH_LSM_CGROUP) return Mechanism::kLsmCgroup;
  if (v == TG_MECH_LSM_GLOBAL) return Mechanism::kLsmGlobal;
  if (v == TG_MECH_OBSERVE) return Mechanism::kObserve;
  return std::nullopt;
}

}  // namespace tg
