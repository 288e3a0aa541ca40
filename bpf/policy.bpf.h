/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Kernel-side helpers shared by the enforcement objects: exact counting and event emission.
 * Only BPF programs include this file.
 */
#ifndef TUNNELGUARD_BPF_POLICY_BPF_H_
#define TUNNELGUARD_BPF_POLICY_BPF_H_

/* vmlinux.h must come before libbpf's headers: keep clang-format from regrouping them. */
// clang-format off
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "policy_abi.h"
// clang-format on

/* Per-CPU counters, added atomically: BPF programs run with migration (not preemption)
 * disabled, so two tasks on one CPU may interleave; an atomic add on the CPU's own slot
 * keeps the counter exact under any load and costs no cache-line bouncing. */
static __always_inline void tg_count(void *counters, __u32 index) {
  __u64 *value = bpf_map_lookup_elem(counters, &index);
  if (value) __sync_fetch_and_add(value, 1);
}

/* One event on `ring`. The ring buffer is never waited on: a full buffer counts a drop in
 * `drops` and the decision stands (counters never depend on events). */
static __always_inline void tg_emit(void *ring, void *drops, __u16 policy, __u16 action,
                                    __u32 detail, __u64 arg0, __u64 arg1) {
  struct tg_policy_event *e = bpf_ringbuf_reserve(ring, sizeof(*e), 0);
  if (!e) {
    tg_count(drops, 0);
    return;
  }
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  e->time_ns = bpf_ktime_get_boot_ns();
  e->cgroup_id = bpf_get_current_cgroup_id();
  e->arg0 = arg0;
  e->arg1 = arg1;
  e->pid = (__u32)pid_tgid;
  e->tgid = (__u32)(pid_tgid >> 32);
  e->uid = (__u32)bpf_get_current_uid_gid();
  e->policy = policy;
  e->action = action;
  e->detail = detail;
  e->pad = 0;
  bpf_get_current_comm(e->comm, sizeof(e->comm));
  bpf_ringbuf_submit(e, 0);
}

/* A call from the canary's cgroup (see struct tg_canary_state): counted apart. One helper
 * call, made only while a canary cgroup is configured. */
static __always_inline bool tg_from_canary(const struct tg_canary_state *canary) {
  return canary->cgroup_id != 0 && bpf_get_current_cgroup_id() == canary->cgroup_id;
}

/* lsm_global: the target cgroup, one entry (key 0) the agent fills with its directory fd.
 * bpf_current_task_under_cgroup() is true for the target and every descendant (a plain
 * cgroup-id comparison would miss child cgroups). */
#define TG_CGROUP_MAP(name)                  \
  struct {                                   \
    __uint(type, BPF_MAP_TYPE_CGROUP_ARRAY); \
    __uint(max_entries, 1);                  \
    __type(key, __u32);                      \
    __type(value, __u32);                    \
  } name SEC(".maps")

static __always_inline bool tg_in_target(void *cgroup_map) {
  return bpf_current_task_under_cgroup(cgroup_map, 0) == 1;
}

/* observe: x86-64 system call numbers (the shipped units allow native calls only:
 * SystemCallArchitectures=native; a 32-bit task's numbers differ and are not decoded). */
#define TG_NR_MMAP 9
#define TG_NR_MPROTECT 10
#define TG_NR_SHMAT 30
#define TG_NR_SOCKET 41
#define TG_NR_SOCKETPAIR 53
#define TG_NR_PKEY_MPROTECT 329
#define TG_ERR_EPERM 1
#define TG_ERR_EAFNOSUPPORT 97

/* observe: the record of a classic per-syscall exit tracepoint (events/syscalls/sys_exit_<name>/
 * format): 8 bytes of common fields, the syscall number at 8, the return value at 16 (the same
 * offsets on 6.1, where the kernel fills them as unsigned longs, and on 6.18). */
struct tg_sys_exit_record {
  __u64 common;
  int nr;
  long ret;
};

/* observe: the caller's user registers at a per-syscall exit tracepoint (its context holds no
 * arguments; the syscall's saved registers still do: di, si, dx = the first three arguments). */
static __always_inline struct pt_regs *tg_user_regs(void) {
  return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
}

/* Shared map shapes, so every object declares its maps the same way. */
#define TG_COUNTER_MAP(name, entries)        \
  struct {                                   \
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); \
    __uint(max_entries, entries);            \
    __type(key, __u32);                      \
    __type(value, __u64);                    \
  } name SEC(".maps")

#define TG_EVENT_RING_BYTES (256 * 1024)
#define TG_EVENT_MAP(name)                    \
  struct {                                    \
    __uint(type, BPF_MAP_TYPE_RINGBUF);       \
    __uint(max_entries, TG_EVENT_RING_BYTES); \
  } name SEC(".maps")

#endif /* TUNNELGUARD_BPF_POLICY_BPF_H_ */
