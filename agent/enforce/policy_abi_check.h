// The BPF side and the agent must agree on every shared struct byte for byte: checked here at
// compile time against the layout the BPF headers document.
#ifndef TUNNELGUARD_AGENT_POLICY_ABI_CHECK_H_
#define TUNNELGUARD_AGENT_POLICY_ABI_CHECK_H_

#include <cstddef>

#include "bpf/policy_abi.h"
#include "bpf/policy_families.h"
#include "bpf/policy_wx.h"

static_assert(sizeof(tg_policy_event) == 72);
static_assert(offsetof(tg_policy_event, time_ns) == 0);
static_assert(offsetof(tg_policy_event, cgroup_id) == 8);
static_assert(offsetof(tg_policy_event, arg0) == 16);
static_assert(offsetof(tg_policy_event, arg1) == 24);
static_assert(offsetof(tg_policy_event, pid) == 32);
static_assert(offsetof(tg_policy_event, tgid) == 36);
static_assert(offsetof(tg_policy_event, uid) == 40);
static_assert(offsetof(tg_policy_event, policy) == 44);
static_assert(offsetof(tg_policy_event, action) == 46);
static_assert(offsetof(tg_policy_event, detail) == 48);
static_assert(offsetof(tg_policy_event, comm) == 52);
static_assert(sizeof(tg_canary_state) == 24);
static_assert(offsetof(tg_canary_state, last_run_ns) == 8);
static_assert(offsetof(tg_canary_state, last_result) == 16);
static_assert(sizeof(tg_observe_state) == 24);
static_assert(sizeof(tg_setup_exempt) == 16);
static_assert(offsetof(tg_setup_exempt, tgid) == 8);
static_assert(sizeof(tg_unix_notify) == 120);
static_assert(offsetof(tg_unix_notify, path) == 8);
static_assert(sizeof(tg_fam_config) == 200);
static_assert(offsetof(tg_fam_config, notify) == 80);
static_assert(offsetof(tg_fam_config, setup) == 64);
static_assert(offsetof(tg_fam_config, observe) == 40);
static_assert(offsetof(tg_fam_config, allowed) == 8);
static_assert(offsetof(tg_fam_config, canary) == 16);
static_assert(sizeof(tg_wx_config) == 56);
static_assert(TG_WX_CANARY_COUNTERS == int{TG_ACTIONS} + int{TG_WX_DETAILS});
static_assert(offsetof(tg_wx_config, observe) == 32);
static_assert(offsetof(tg_wx_config, canary) == 8);

#endif  // TUNNELGUARD_AGENT_POLICY_ABI_CHECK_H_
