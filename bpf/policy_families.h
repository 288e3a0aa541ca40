/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * ABI of policy_families.bpf.c (RestrictAddressFamilies): its config and counter layout.
 * Limits: families 0..62 are counted one by one; a family >= 63 (none exists in Linux 6.x,
 * AF_MAX is 46) is counted in TG_FAM_OTHER and is never on the allow-list.
 */
#ifndef TUNNELGUARD_BPF_POLICY_FAMILIES_H_
#define TUNNELGUARD_BPF_POLICY_FAMILIES_H_

#include "policy_abi.h"

#define TG_FAM_SLOTS 64
#define TG_FAM_OTHER 63
#define TG_FAM_COUNTERS (TG_ACTIONS * TG_FAM_SLOTS)

/* systemd's set-up exemption (policy_families.bpf.c, tg_fam_setup_exempt): a call is exempt when
 * the caller's parent is the process `tgid` (the service manager, global pid 1), the caller has
 * not exec'd since it was forked, and it runs the same executable as that parent. */
struct tg_setup_exempt {
  __u64 exe_ino; /* the manager's executable as the agent saw it at attach: for status only */
  __u32 tgid;    /* the service manager's global tgid (1); 0: exemption off */
  __u32 pad;
};

/* The single entry of tg_fam_cfg. */
struct tg_fam_config {
  __u32 mode;      /* enum tg_mode */
  __u32 mechanism; /* enum tg_mechanism */
  __u64 allowed;   /* bit N set: family N may be created */
  struct tg_canary_state canary;
  struct tg_observe_state observe;
  struct tg_setup_exempt setup;
};

#endif /* TUNNELGUARD_BPF_POLICY_FAMILIES_H_ */
