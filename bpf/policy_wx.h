/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* ABI of policy_wx.bpf.c (MemoryDenyWriteExecute): config, details and counter layout. */
#ifndef TUNNELGUARD_BPF_POLICY_WX_H_
#define TUNNELGUARD_BPF_POLICY_WX_H_

#include "policy_abi.h"

/* What a memory call was, as counted. Below TG_WX_FIRST_DENIABLE: calls that pass the
 * policy (counted as allow); from it on: the reason a call breaks W^X. */
enum tg_wx_detail {
  TG_WX_MMAP = 0,        /* an mmap that keeps W^X */
  TG_WX_MPROTECT = 1,    /* an mprotect/pkey_mprotect that keeps W^X */
  TG_WX_SHMAT = 2,       /* a shmat that keeps W^X */
  TG_WX_PROC_MEM = 3,    /* a /proc/PID/mem file opened read-only */
  TG_WX_PTRACE_READ = 4, /* a read-mode ptrace access check (/proc/PID/maps of another task) */
  TG_WX_FIRST_DENIABLE = 5,
  TG_WX_MMAP_WX = 5,            /* mmap asking PROT_WRITE|PROT_EXEC (systemd denies too) */
  TG_WX_MMAP_IMPLIED_X = 6,     /* mmap W whose effective prot is W+X (READ_IMPLIES_EXEC) */
  TG_WX_MMAP_WRITABLE_FILE = 7, /* exec mapping of a file open/mapped for writing (memfd) */
  TG_WX_MPROTECT_WX = 8,        /* mprotect asking (effectively) W+X */
  TG_WX_MPROTECT_ADD_X = 9,     /* mprotect adding exec to a mapping that was not exec */
  TG_WX_SHMAT_EXEC = 10,        /* shmat with SHM_EXEC (systemd denies too) */
  TG_WX_SHMAT_IMPLIED_X = 11,   /* writable shmat under READ_IMPLIES_EXEC: an RWX mapping */
  /* Beyond systemd (its seccomp filter sees neither): writes into memory that bypass the page
   * protections (FOLL_FORCE), so text can be rewritten without any W+X mapping. */
  TG_WX_PROC_MEM_WRITE = 12, /* a /proc/PID/mem file (self included) opened for writing */
  TG_WX_PTRACE_ATTACH = 13,  /* attach-mode access to another task: PTRACE_ATTACH/SEIZE, … */
  TG_WX_PTRACE_TRACEME = 14, /* PTRACE_TRACEME: asking the parent to become our tracer */
  TG_WX_DETAILS = 15,
};

#define TG_WX_COUNTERS (TG_ACTIONS * TG_WX_DETAILS)
/* tg_wx_canary: the canary's decisions by action ([0, TG_ACTIONS), the layout every policy's
 * canary map starts with), then its refused calls by detail (TG_ACTIONS + detail), so the
 * canary can prove each hook on its own: one attempt per hook, each with its own detail. */
#define TG_WX_CANARY_COUNTERS 20 /* TG_ACTIONS + TG_WX_DETAILS (static_asserted by the agent) */

/* The single entry of tg_wx_cfg. */
struct tg_wx_config {
  __u32 mode;      /* enum tg_mode */
  __u32 mechanism; /* enum tg_mechanism */
  struct tg_canary_state canary;
  struct tg_observe_state observe;
};

#endif /* TUNNELGUARD_BPF_POLICY_WX_H_ */
