/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* ABI of policy_wx.bpf.c (MemoryDenyWriteExecute): config, details and counter layout. */
#ifndef TUNNELGUARD_BPF_POLICY_WX_H_
#define TUNNELGUARD_BPF_POLICY_WX_H_

#include "policy_abi.h"

/* What a memory call was, as counted. Below TG_WX_FIRST_DENIABLE: calls that pass the
 * policy (counted as allow); from it on: the reason a call breaks W^X. */
enum tg_wx_detail {
  TG_WX_MMAP = 0,     /* an mmap that keeps W^X */
  TG_WX_MPROTECT = 1, /* an mprotect/pkey_mprotect that keeps W^X */
  TG_WX_SHMAT = 2,    /* a shmat that keeps W^X */
  TG_WX_FIRST_DENIABLE = 3,
  TG_WX_MMAP_WX = 3,            /* mmap asking PROT_WRITE|PROT_EXEC (systemd denies too) */
  TG_WX_MMAP_IMPLIED_X = 4,     /* mmap W whose effective prot is W+X (READ_IMPLIES_EXEC) */
  TG_WX_MMAP_WRITABLE_FILE = 5, /* exec mapping of a file open/mapped for writing (memfd) */
  TG_WX_MPROTECT_WX = 6,        /* mprotect asking (effectively) W+X */
  TG_WX_MPROTECT_ADD_X = 7,     /* mprotect adding exec to a mapping that was not exec */
  TG_WX_SHMAT_EXEC = 8,         /* shmat with SHM_EXEC (systemd denies too) */
  TG_WX_SHMAT_IMPLIED_X = 9,    /* writable shmat under READ_IMPLIES_EXEC: an RWX mapping */
  TG_WX_DETAILS = 10,
};

#define TG_WX_COUNTERS (TG_ACTIONS * TG_WX_DETAILS)

/* The single entry of tg_wx_cfg. */
struct tg_wx_config {
  __u32 mode;      /* enum tg_mode */
  __u32 mechanism; /* enum tg_mechanism */
  struct tg_canary_state canary;
  struct tg_observe_state observe;
};

#endif /* TUNNELGUARD_BPF_POLICY_WX_H_ */
