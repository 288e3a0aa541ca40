/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * ABI of policy_families.bpf.c (RestrictAddressFamilies): its config and counter layout.
 * Limits: families 0..62 are counted one by one; a family >= 63 (none exists in Linux 6.x,
 * AF_MAX is 46) is counted in TG_FAM_OTHER and is never on the allow-list. Counter and event
 * details past the families (TG_FAM_UNIX_*) are the unix-notify mode's reasons.
 */
#ifndef TUNNELGUARD_BPF_POLICY_FAMILIES_H_
#define TUNNELGUARD_BPF_POLICY_FAMILIES_H_

#include "policy_abi.h"

#define TG_FAM_OTHER 63
/* unix-notify (AF_UNIX for sd_notify only): bit 63 of tg_fam_config.allowed, the bit no
 * family can use (TG_FAM_OTHER is never allowed), so the mode travels with the allow-list
 * through pins, status and SetMode. Inert while AF_UNIX itself is allowed. */
#define TG_FAM_UNIX_NOTIFY_BIT TG_FAM_OTHER
/* Detail slots (counters, events) past the 64 family slots: the unix-notify reasons. */
#define TG_FAM_UNIX_NOTIFY 64 /* allow: a datagram connect/send to the notify socket */
#define TG_FAM_UNIX_PEER 65   /* deny: a datagram connect/send to any other AF_UNIX socket */
#define TG_FAM_UNIX_PAIR 66   /* deny: socketpair(AF_UNIX) */
#define TG_FAM_SLOTS 68
#define TG_FAM_COUNTERS (TG_ACTIONS * TG_FAM_SLOTS)
/* tg_fam_canary: the canary's decisions by action, then its peer-hook (unix_may_send)
 * decisions by action, so the canary can tell its notify-peer attempt from its socketpair. */
#define TG_FAM_CANARY_COUNTERS (2 * TG_ACTIONS)

/* The notify socket as the kernel records the peer's bound address (struct unix_address): `len`
 * is its length, sizeof(sa_family_t) + the sun_path bytes (a path socket: with its NUL; an
 * abstract one: a leading NUL and the name, no terminator); 0: no notify socket configured. */
#define TG_NOTIFY_PATH_MAX 108 /* sizeof(sun_path) */
struct tg_unix_notify {
  __u32 len;
  __u32 pad;
  char path[TG_NOTIFY_PATH_MAX + 4]; /* sun_path bytes; 4 bytes of padding to an 8-byte size */
};

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
  struct tg_unix_notify notify; /* unix-notify's peer; read only while that mode is on */
};

#endif /* TUNNELGUARD_BPF_POLICY_FAMILIES_H_ */
