/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * ABI shared by every enforcement object (policy_families, policy_wx) and the agent:
 * modes, actions, mechanisms and the event record on each object's ring buffer.
 * Plain __u32/__u64 only; the agent static_asserts the layout (agent/enforce/policy_abi_check.h).
 */
#ifndef TUNNELGUARD_BPF_POLICY_ABI_H_
#define TUNNELGUARD_BPF_POLICY_ABI_H_

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Mode of one policy, read by the programs at every call from the policy's config map, so
 * the agent can flip it (SetMode) without reloading or re-attaching anything. 0 is not a
 * valid mode: an unwritten config fails closed (enforce). */
enum tg_mode {
  TG_MODE_ENFORCE = 1, /* deny with the policy's errno */
  TG_MODE_AUDIT = 2,   /* allow; count and report "would deny" */
};

/* What a program decided for one call. Counters are indexed action * DETAILS + detail. */
enum tg_action {
  TG_ACT_ALLOW = 0,
  TG_ACT_DENY = 1,
  TG_ACT_WOULD_DENY = 2,
  TG_ACT_DENIED_BY_SECCOMP = 3, /* observe --observe-seccomp: systemd's own filter refused it */
  TG_ACT_EXEMPT_SETUP = 4,      /* allowed: systemd's exec child setting up (address_families) */
  TG_ACTIONS = 5,
};

/* Which policy an event comes from. */
enum tg_policy {
  TG_POLICY_FAMILIES = 1, /* address_families */
  TG_POLICY_WX = 2,       /* wx_memory */
};

/* How the programs are hooked (recorded in the config map so `status` can say it). */
enum tg_mechanism {
  TG_MECH_LSM_CGROUP = 1, /* lsm_cgroup programs attached to the target cgroup */
  TG_MECH_LSM_GLOBAL = 2, /* global lsm/ programs filtered by cgroup */
  TG_MECH_OBSERVE = 3,    /* syscall exit tracepoints: audit only */
};

/* Outcome of the last canary run (agent/enforce/canary.h), kept with the policy's config. */
enum tg_canary_result {
  TG_CANARY_NEVER = 0,  /* no canary has run */
  TG_CANARY_PASSED = 1, /* the forbidden attempt was denied (enforce) or counted (audit) */
  TG_CANARY_FAILED = 2, /* it was not: the policy is not in force */
};

/* The canary's part of every policy config. Calls from the task of cgroup `cgroup_id` (the
 * canary's own child cgroup of the target, created per run) are counted in the policy's
 * canary counters and never in its decision counters or events, so a canary never shows up
 * as the tunnel's own behaviour. The programs read cgroup_id; the rest is the agent's record. */
struct tg_canary_state {
  __u64 cgroup_id;   /* 0: no canary cgroup yet */
  __u64 last_run_ns; /* CLOCK_BOOTTIME of the last run's end, 0 never */
  __u32 last_result; /* enum tg_canary_result */
  __u32 pad;
};

/* observe: the system calls the policies watch, one bit each. Each is hooked at its own exit
 * tracepoint (tracepoint/syscalls/sys_exit_<name>: only that call runs a program) unless the
 * kernel lacks it; then at the host-wide sys_exit fallback (tp_btf/sys_exit), per call. */
enum tg_obs_call {
  TG_OBS_SOCKET = 1 << 0,
  TG_OBS_SOCKETPAIR = 1 << 1,
  TG_OBS_MMAP = 1 << 2,
  TG_OBS_MPROTECT = 1 << 3,
  TG_OBS_PKEY_MPROTECT = 1 << 4,
  TG_OBS_SHMAT = 1 << 5,
};

/* The observe mechanism's part of every policy config. */
struct tg_observe_state {
  __u32 seccomp; /* 1: count seccomp refusals (-EAFNOSUPPORT/-EPERM at exit) as denied_by_seccomp */
  __u32 sys_exit_calls; /* TG_OBS_* bits observed through the sys_exit fallback (0: none) */
  __u64 cost_bare_ps;   /* measured at attach: getppid without / with the observe programs, */
  __u64 cost_on_ps;     /* medians in picoseconds per call (0: not measured) */
};

#define TG_COMM_LEN 16

/* One deny or would_deny, as the ring buffer carries it. Kernel naming: `pid` is the
 * thread id, `tgid` the process id (what userspace calls the pid). */
struct tg_policy_event {
  __u64 time_ns;   /* bpf_ktime_get_boot_ns(): CLOCK_BOOTTIME */
  __u64 cgroup_id; /* the calling task's cgroup (may be a descendant of the target) */
  __u64 arg0;      /* families: socket type;     wx: requested prot (shmat: shmflg) */
  __u64 arg1;      /* families: protocol;        wx: effective prot (mmap: | flags << 32) */
  __u32 pid;
  __u32 tgid;
  __u32 uid;
  __u16 policy; /* enum tg_policy */
  __u16 action; /* enum tg_action */
  __u32 detail; /* families: the address family; wx: enum tg_wx_detail */
  char comm[TG_COMM_LEN];
  __u32 pad;
};

#endif /* TUNNELGUARD_BPF_POLICY_ABI_H_ */
