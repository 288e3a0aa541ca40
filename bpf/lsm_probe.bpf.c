// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * lsm_probe: the smallest lsm_cgroup program that shows BPF-LSM really enforces.
 *
 * Attached to one cgroup (BPF_LSM_CGROUP), it denies socket() of one family (`denied_family`,
 * set before load) for tasks in that cgroup and its descendants, and counts its verdicts.
 * A successful attach proves nothing — with `bpf` missing from `lsm=` the program loads and
 * attaches and is never called — so callers make a real attempt and read the counters.
 *
 * Hook: security_socket_create() runs for every socket a task asks for (socket(),
 * socketpair(), accept's new socket excluded), before the protocol family's create(); it is
 * the hook systemd-style family restrictions need, and its signature has been stable since
 * the LSM framework began. `kern` sockets (created by the kernel itself) are never denied.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "lsm_probe.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile int denied_family = 1; /* AF_UNIX unless the loader says otherwise */

/* Plain .bss counters: the probe runs a handful of times, exactness under contention is the
 * enforcement programs' job (per-CPU maps), not this one's. */
__u64 tg_probe_hits[TG_PROBE_VERDICTS];

/* lsm_cgroup convention: return 1 to allow, 0 to deny (-EPERM). */
SEC("lsm_cgroup/socket_create")
int BPF_PROG(tg_probe_sock, int family, int type, int protocol, int kern) {
  if (kern || family != denied_family) {
    __sync_fetch_and_add(&tg_probe_hits[TG_PROBE_ALLOWED], 1);
    return 1;
  }
  __sync_fetch_and_add(&tg_probe_hits[TG_PROBE_DENIED], 1);
  return 0;
}

/* Does this kernel load a global lsm/ program (the lsm_global mechanism)? Loaded on its own,
 * never attached: it only answers the question. */
SEC("lsm/socket_create")
int BPF_PROG(tg_probe_gsock, int family, int type, int protocol, int kern, int ret) {
  return ret;
}

/* Does this kernel load lsm_cgroup programs on the two hooks unix-notify adds to the address
 * families policy (policy_families.bpf.c: unix_may_send sees a datagram's peer socket,
 * socket_socketpair the pair)? Loaded on their own, never attached: they only answer that. */
SEC("lsm_cgroup/unix_may_send")
int BPF_PROG(tg_probe_send, struct socket *sock, struct socket *other) {
  return 1;
}

SEC("lsm_cgroup/socket_socketpair")
int BPF_PROG(tg_probe_pair, struct socket *a, struct socket *b) {
  return 1;
}
