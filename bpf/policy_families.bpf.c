// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * policy_families: systemd's RestrictAddressFamilies= for one cgroup, as an LSM.
 *
 * A task in the target cgroup (or any descendant, also ones created later: lsm_cgroup
 * programs are inherited like every cgroup BPF program) that asks for a socket of a family
 * outside the allow-list gets EAFNOSUPPORT, exactly what systemd's seccomp filter returns.
 * Unlike seccomp, the hook sees every path to a new socket: socket(), both sockets of
 * socketpair(), io_uring's IORING_OP_SOCKET and i386 socketcall(). Kernel-internal sockets
 * (kern != 0) are never denied, and neither is systemd's own set-up code before the service's
 * exec (tg_fam_setup_exempt below).
 *
 * Maps: tg_fam_cfg (mode, mechanism, allow-list bitmap; read at every call so the mode and
 * the list change without reload), tg_fam_count (per-CPU decisions, action x family),
 * tg_fam_events (ring buffer of denials), tg_fam_drops (events lost to a full ring),
 * tg_fam_canary (the canary's decisions, kept out of the others).
 */
/* policy.bpf.h brings vmlinux.h, which libbpf's headers need first. */
// clang-format off
#include "policy.bpf.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "policy_families.h"
// clang-format on

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define TG_EAFNOSUPPORT 97

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct tg_fam_config);
} tg_fam_cfg SEC(".maps");

TG_COUNTER_MAP(tg_fam_count, TG_FAM_COUNTERS);
TG_COUNTER_MAP(tg_fam_drops, 1);
TG_EVENT_MAP(tg_fam_events);
TG_COUNTER_MAP(tg_fam_canary, TG_FAM_CANARY_COUNTERS); /* the canary's decisions */
TG_CGROUP_MAP(tg_fam_cgrp);                /* lsm_global: the target cgroup */

/*
 * systemd's set-up exemption. The fail-closed drop-in attaches this policy in ExecStartPre=, so
 * it is in force when systemd spawns the process for ExecStart= into the cgroup; that process,
 * still running systemd's code, resolves User= (glibc: nscd, userdb), connects the service's
 * stdout/stderr to journald with AF_UNIX sockets and only then installs RestrictAddressFamilies=
 * (seccomp) and execs. That is not the tunnel: the promise is enforcement from the tunnel's
 * first instruction, i.e. from its exec. systemd does that set-up in one of two shapes:
 *   <= 254: PID 1's forked child, running PID 1's own executable, before any exec;
 *   >= 255: PID 1 clone3()s a child that at once execs systemd-executor (the file of that name
 *           in the directory of PID 1's executable), which does the set-up, then execs.
 * Exempt is exactly a task that
 *   1. is a child of the service manager: real_parent->tgid == setup.tgid (global pid 1; 0 =
 *      off, when the agent is not in the init pid namespace and cannot tell who that is), and
 *   2a. (<= 254) has not exec'd since the fork: self_exec_id == parent_exec_id (exec increments
 *      self_exec_id; fork copies it and sets parent_exec_id to the parent's; reparenting changes
 *      neither; clone(CLONE_PARENT) copies the caller's parent_exec_id, so a tunnel process
 *      cloning itself a sibling under PID 1 is not equal after its own exec), and runs the
 *      manager's own executable (mm->exe_file's inode is the parent's: an orphan of the tunnel
 *      reparented to PID 1 passes 1 and the exec-id check but runs the tunnel's executable); or
 *   2b. (>= 255) has exec'd exactly once since the fork (self_exec_id == parent_exec_id + 1),
 *      was forked by the manager as it runs now (parent_exec_id == the parent's self_exec_id: an
 *      orphan of the tunnel has the tunnel's exec id there, ahead of PID 1's unless PID 1 has
 *      re-exec'd twice since), still holds CAP_SYS_ADMIN in the initial user namespace (systemd's
 *      set-up runs with PID 1's privileges; it stops that late orphan of a tunnel without them,
 *      and a tunnel process that has them could detach this program anyway),
 *      and that exec was of systemd-executor: exe_file's dentry is named "systemd-executor" and
 *      has the same parent dentry as PID 1's executable's. Dentries, not an inode number read by
 *      the agent: PID 1 re-exec'ing an upgraded binary (daemon-reexec, a NixOS switch to another
 *      store path) moves the check with it at once, with no agent involved, and bind mounts or
 *      btrfs st_dev do not matter; only root can create a file in that directory.
 * So nothing the tunnel starts can get it: its forks have a tunnel process as parent, its
 * orphans run its executable or carry its exec id, and exec'ing systemd's binaries is an exec
 * too many (changing exe_file without exec, prctl(PR_SET_MM_EXE_FILE), needs CAP_SYS_RESOURCE,
 * which the unit's empty CapabilityBoundingSet= never grants).
 * Limit: it allows whatever systemd's set-up does, for every family (it also serves
 * ExecStartPost=/ExecReload=/ExecStop= processes until their exec). Read only when a call would
 * be denied, so an allowed call pays nothing; exempt calls are counted (TG_ACT_EXEMPT_SETUP),
 * never emitted as events.
 */
#define TG_EXECUTOR_NAME "systemd-executor"
#define TG_EXECUTOR_NAME_LEN 16
#define TG_CAP_SYS_ADMIN 21

/* exe is systemd-executor in the directory of the manager's executable (2b). */
static __always_inline bool tg_fam_is_executor(struct file *exe, struct file *manager_exe) {
  struct dentry *d = BPF_CORE_READ(exe, f_path.dentry);
  if (!d || BPF_CORE_READ(d, d_name.len) != TG_EXECUTOR_NAME_LEN) return false;
  if (BPF_CORE_READ(d, d_parent) != BPF_CORE_READ(manager_exe, f_path.dentry, d_parent)) {
    return false;
  }
  char name[TG_EXECUTOR_NAME_LEN] = {};
  if (bpf_probe_read_kernel(name, sizeof(name), BPF_CORE_READ(d, d_name.name)) != 0) return false;
  const char want[] = TG_EXECUTOR_NAME;
  for (int i = 0; i < TG_EXECUTOR_NAME_LEN; i++) {
    if (name[i] != want[i]) return false;
  }
  return true;
}

/* CAP_SYS_ADMIN effective in the initial user namespace (2b). kernel_cap_t is u32[2] before
 * 6.3 and one u64 since (commit f122a08b197d): the same 8 bytes on little-endian x86-64, read
 * whole at the relocated offset of cap_effective. */
static __always_inline bool tg_fam_privileged(struct task_struct *task) {
  const struct cred *cred = BPF_CORE_READ(task, cred);
  if (BPF_CORE_READ(cred, user_ns, level) != 0) return false;
  __u64 caps = 0;
  if (bpf_probe_read_kernel(&caps, sizeof(caps),
                            __builtin_preserve_access_index(&cred->cap_effective)) != 0) {
    return false;
  }
  return (caps >> TG_CAP_SYS_ADMIN) & 1;
}

static __always_inline bool tg_fam_setup_exempt(const struct tg_fam_config *cfg) {
  if (cfg->setup.tgid == 0) return false;
  struct task_struct *task = (struct task_struct *)bpf_get_current_task();
  struct task_struct *parent = BPF_CORE_READ(task, real_parent);
  if ((__u32)BPF_CORE_READ(parent, tgid) != cfg->setup.tgid) return false;
  const __u64 self_exec = BPF_CORE_READ(task, self_exec_id);
  const __u64 parent_exec = BPF_CORE_READ(task, parent_exec_id);
  struct file *exe = BPF_CORE_READ(task, mm, exe_file);
  struct file *manager_exe = BPF_CORE_READ(parent, mm, exe_file);
  if (!exe || !manager_exe) return false;
  if (self_exec == parent_exec) { /* 2a */
    return BPF_CORE_READ(exe, f_inode) == BPF_CORE_READ(manager_exe, f_inode);
  }
  if (self_exec != parent_exec + 1 || parent_exec != BPF_CORE_READ(parent, self_exec_id)) {
    return false;
  }
  return tg_fam_privileged(task) && tg_fam_is_executor(exe, manager_exe); /* 2b */
}

#define TG_AF_UNIX 1
#define TG_SOCK_DGRAM 2
#define TG_SOCK_TYPE_MASK 0xf
#define TG_EPERM 1

/* unix-notify is on: AF_UNIX is not allowed outright, only sd_notify's datagrams. */
static __always_inline bool tg_fam_notify_on(const struct tg_fam_config *cfg) {
  return cfg && ((cfg->allowed >> TG_FAM_UNIX_NOTIFY_BIT) & 1) &&
         !((cfg->allowed >> TG_AF_UNIX) & 1);
}

/* Counts one decision on detail `slot` (canary calls apart, `peer` ones also in the canary's
 * peer half), applies the set-up exemption to a refusal, and reports a refusal as an event with
 * `detail`. Returns the action. Shared by every hook, so all count and report alike. */
static __always_inline enum tg_action tg_fam_account(const struct tg_fam_config *cfg, __u32 slot,
                                                     bool allow, bool seccomp_refused, bool peer,
                                                     __u32 detail, __u64 arg0, __u64 arg1) {
  const bool canary = cfg && tg_from_canary(&cfg->canary);
  enum tg_action action = TG_ACT_ALLOW;
  if (!allow) action = cfg && cfg->mode == TG_MODE_AUDIT ? TG_ACT_WOULD_DENY : TG_ACT_DENY;
  if (seccomp_refused) action = TG_ACT_DENIED_BY_SECCOMP;
  if (canary) {
    tg_count(&tg_fam_canary, action);
    if (peer) tg_count(&tg_fam_canary, TG_ACTIONS + action);
    return action;
  }
  if (action == TG_ACT_ALLOW) {
    tg_count(&tg_fam_count, TG_ACT_ALLOW * TG_FAM_SLOTS + slot);
    return action;
  }
  if (!seccomp_refused && cfg && tg_fam_setup_exempt(cfg)) {
    tg_count(&tg_fam_count, TG_ACT_EXEMPT_SETUP * TG_FAM_SLOTS + slot);
    return TG_ACT_EXEMPT_SETUP;
  }
  tg_count(&tg_fam_count, action * TG_FAM_SLOTS + slot);
  tg_emit(&tg_fam_events, &tg_fam_drops, TG_POLICY_FAMILIES, action, detail, arg0, arg1);
  return action;
}

/* The decision on a new socket, independent of how the program is hooked (lsm_cgroup, a global
 * lsm/ program or an observer call the same function). `pair`: the observer saw socketpair()
 * (the LSM hooks see each of its sockets here and the pair at socket_socketpair). Under
 * unix-notify an AF_UNIX datagram socket is allowed here; what it may reach is decided per peer
 * (tg_fam_peer), and a pair of them is refused (tg_fam_pair). */
static __always_inline enum tg_action tg_fam_decide(int family, int type, int protocol, int kern,
                                                    bool seccomp_refused, bool pair) {
  __u32 zero = 0;
  struct tg_fam_config *cfg = bpf_map_lookup_elem(&tg_fam_cfg, &zero);
  __u32 slot = family >= 0 && family < TG_FAM_OTHER ? (__u32)family : TG_FAM_OTHER;
  __u64 allowed = cfg ? cfg->allowed : 0;
  const bool notify_dgram = family == TG_AF_UNIX && tg_fam_notify_on(cfg) &&
                            (type & TG_SOCK_TYPE_MASK) == TG_SOCK_DGRAM;
  if (notify_dgram && pair) slot = TG_FAM_UNIX_PAIR;
  const bool allow =
      kern || (slot != TG_FAM_OTHER && slot < 64 && ((allowed >> slot) & 1)) ||
      (notify_dgram && !pair);
  return tg_fam_account(cfg, slot, allow && !seccomp_refused, seccomp_refused, false,
                        slot < 64 ? (__u32)family : slot, (__u64)type, (__u64)protocol);
}

/* unix-notify: the peer whose bound address is `addr` is the notify socket, i.e. that address
 * (the kernel's copy, set by bind() and never changed after) is the configured one, byte for
 * byte and of the same length.
 * Limit: an address names a socket, not its owner; whoever binds that address in another mount
 * namespace (path) or network namespace (abstract) is reachable too (bind() is not hooked). */
static __always_inline bool tg_fam_is_notify_peer(const struct tg_fam_config *cfg,
                                                  struct unix_address *addr) {
  if (!addr) return false; /* an unbound peer is not the notify socket */
  const __u32 len = (__u32)BPF_CORE_READ(addr, len);
  if (len != cfg->notify.len || len <= 2 || len > 2 + TG_NOTIFY_PATH_MAX) return false;
  const __u32 n = len - 2;
  char path[TG_NOTIFY_PATH_MAX] = {};
  if (n > TG_NOTIFY_PATH_MAX ||
      bpf_probe_read_kernel(path, n, __builtin_preserve_access_index(&addr->name[0].sun_path)) !=
          0) {
    return false;
  }
  for (int i = 0; i < TG_NOTIFY_PATH_MAX; i++) {
    if ((__u32)i >= n) break;
    if (path[i] != cfg->notify.path[i]) return false;
  }
  return true;
}

/* A datagram connect or send from an AF_UNIX socket of the target to `other`: under
 * unix-notify, allowed to the notify socket only (detail unix_notify), refused to any other
 * (unix_peer; the event's arg0 is the sender's socket type, arg1 the peer's address length, 0
 * when unbound). Nothing is counted while the mode is off: the socket's creation was. */
static __always_inline enum tg_action tg_fam_peer(struct socket *sock, struct socket *other) {
  __u32 zero = 0;
  struct tg_fam_config *cfg = bpf_map_lookup_elem(&tg_fam_cfg, &zero);
  if (!tg_fam_notify_on(cfg)) return TG_ACT_ALLOW;
  struct unix_sock *u = (struct unix_sock *)BPF_CORE_READ(other, sk);
  struct unix_address *addr = BPF_CORE_READ(u, addr);
  const bool notify = tg_fam_is_notify_peer(cfg, addr);
  const __u64 peer_len = addr ? (__u64)BPF_CORE_READ(addr, len) : 0;
  const __u32 slot = notify ? TG_FAM_UNIX_NOTIFY : TG_FAM_UNIX_PEER;
  return tg_fam_account(cfg, slot, notify, false, true, slot, (__u64)BPF_CORE_READ(sock, type),
                        peer_len);
}

/* socketpair() of AF_UNIX datagram sockets under unix-notify: refused (unix_socketpair), as a
 * pair can reach no notify socket. Other families and types were decided (and counted) at
 * creation: in audit a stream pair is one would_deny per socket there, not one more here. */
static __always_inline enum tg_action tg_fam_pair(struct socket *a) {
  __u32 zero = 0;
  struct tg_fam_config *cfg = bpf_map_lookup_elem(&tg_fam_cfg, &zero);
  if (!tg_fam_notify_on(cfg) || BPF_CORE_READ(a, sk, __sk_common.skc_family) != TG_AF_UNIX ||
      (BPF_CORE_READ(a, type) & TG_SOCK_TYPE_MASK) != TG_SOCK_DGRAM) {
    return TG_ACT_ALLOW;
  }
  return tg_fam_account(cfg, TG_FAM_UNIX_PAIR, false, false, false, TG_FAM_UNIX_PAIR,
                        (__u64)BPF_CORE_READ(a, type), 0);
}

/*
 * Hook: security_socket_create(family, type, protocol, kern), called by __sock_create()
 * after the family range check and before the family's create() — for socket(), for each
 * of socketpair()'s two sockets, for io_uring and socketcall. It is the one place every
 * new socket passes with its family known and nothing allocated yet; its signature is
 * unchanged since the LSM framework's first release. (cgroup/sock_create is not an option:
 * it runs only for AF_INET/AF_INET6.) lsm_cgroup runs it for `current`'s cgroup.
 * lsm_cgroup convention: 1 allows; 0 denies with the errno set by bpf_set_retval.
 */
SEC("lsm_cgroup/socket_create")
int BPF_PROG(tg_fam_sock, int family, int type, int protocol, int kern) {
  if (tg_fam_decide(family, type, protocol, kern, false, false) != TG_ACT_DENY) return 1;
  bpf_set_retval(-TG_EAFNOSUPPORT); /* what systemd's RestrictAddressFamilies returns */
  return 0;
}

/*
 * lsm_global (kernels 5.7-5.19 without lsm_cgroup, or where it is refused): the same hook as
 * a global lsm/ program, which runs for every task on the host and so filters first with
 * bpf_current_task_under_cgroup (the target and its descendants). lsm/ convention: 0 allows,
 * -errno denies; `ret` is an earlier BPF-LSM program's verdict, kept when it denied. The
 * errno is a constant (6.12's verifier wants R0 provably in [-4095, 0]).
 */
SEC("lsm/socket_create")
int BPF_PROG(tg_fam_gsock, int family, int type, int protocol, int kern, int ret) {
  if (ret != 0 || !tg_in_target(&tg_fam_cgrp)) return ret;
  return tg_fam_decide(family, type, protocol, kern, false, false) == TG_ACT_DENY ? -TG_EAFNOSUPPORT
                                                                                 : 0;
}

/*
 * unix-notify's peer hook: security_unix_may_send(sock, other), called by unix_dgram_connect()
 * and by every unix_dgram_sendmsg() (connected or given an address) once the peer socket is
 * found, with both sockets: the one place the sender and its peer's bound address meet, for
 * connect() and for sendto()/sendmsg() alike (socket_connect and socket_sendmsg see only the
 * address asked for, which a path lookup then resolves). Stream and seqpacket sockets never get
 * that far: their creation is refused. lsm_cgroup runs it for the sending socket's cgroup.
 * Refused with EPERM: AF_UNIX itself is allowed, this peer is not.
 */
SEC("lsm_cgroup/unix_may_send")
int BPF_PROG(tg_fam_send, struct socket *sock, struct socket *other) {
  if (tg_fam_peer(sock, other) != TG_ACT_DENY) return 1;
  bpf_set_retval(-TG_EPERM);
  return 0;
}

SEC("lsm/unix_may_send")
int BPF_PROG(tg_fam_gsend, struct socket *sock, struct socket *other, int ret) {
  if (ret != 0 || !tg_in_target(&tg_fam_cgrp)) return ret;
  return tg_fam_peer(sock, other) == TG_ACT_DENY ? -TG_EPERM : 0;
}

/*
 * security_socket_socketpair(a, b), called by socketpair() after both sockets were created
 * (each passed socket_create) and before they are connected: the pair as a pair. Refused like a
 * family outside the list (EAFNOSUPPORT), what the same call gets without unix-notify.
 */
SEC("lsm_cgroup/socket_socketpair")
int BPF_PROG(tg_fam_pair_c, struct socket *a, struct socket *b) {
  if (tg_fam_pair(a) != TG_ACT_DENY) return 1;
  bpf_set_retval(-TG_EAFNOSUPPORT);
  return 0;
}

SEC("lsm/socket_socketpair")
int BPF_PROG(tg_fam_gpair, struct socket *a, struct socket *b, int ret) {
  if (ret != 0 || !tg_in_target(&tg_fam_cgrp)) return ret;
  return tg_fam_pair(a) == TG_ACT_DENY ? -TG_EAFNOSUPPORT : 0;
}

/*
 * observe (no BPF-LSM, or bpf missing from lsm=): audit only, at the exit of socket() and
 * socketpair(). Syscall exit sees each call's arguments (the saved user registers) and return
 * value — also calls seccomp refused, which never reach sys_enter (seccomp runs first). Filtered to
 * the target and its descendants like lsm_global. A socket()/socketpair() that created a socket
 * of a family outside the list is a would_deny (socketpair: one per call); one that failed with
 * -EAFNOSUPPORT is systemd's RestrictAddressFamilies= at work (denied_by_seccomp, when the config
 * asks for it; a family whose module is absent fails the same way and is counted the same).
 */
static __always_inline void tg_fam_observe(struct pt_regs *regs, long ret, bool pair) {
  if (!tg_in_target(&tg_fam_cgrp)) return;
  bool seccomp_refused = ret == -TG_ERR_EAFNOSUPPORT;
  if (ret < 0 && !seccomp_refused) return; /* failed for another reason: nothing happened */
  if (seccomp_refused) {
    __u32 zero = 0;
    struct tg_fam_config *cfg = bpf_map_lookup_elem(&tg_fam_cfg, &zero);
    if (!cfg || !cfg->observe.seccomp) return;
  }
  tg_fam_decide((int)BPF_CORE_READ(regs, di), (int)BPF_CORE_READ(regs, si),
                (int)BPF_CORE_READ(regs, dx), 0, seccomp_refused, pair);
}

/* Hooks: each call's own exit tracepoint, so no other system call runs a program of ours. Every
 * task's system calls still take the kernel's syscall-tracing slow path while any syscall
 * tracepoint is enabled (host-wide, measured at attach and shown by status). */
SEC("tracepoint/syscalls/sys_exit_socket")
int tg_fam_obs_sock(struct tg_sys_exit_record *ctx) {
  tg_fam_observe(tg_user_regs(), ctx->ret, false);
  return 0;
}

SEC("tracepoint/syscalls/sys_exit_socketpair")
int tg_fam_obs_pair(struct tg_sys_exit_record *ctx) {
  tg_fam_observe(tg_user_regs(), ctx->ret, true);
  return 0;
}

/* The calls (TG_OBS_* bits) whose own tracepoint this kernel lacks, set by the agent before
 * load: those are observed here instead. */
const volatile __u32 tg_fam_sys_exit_calls = 0;

/*
 * Fallback, per call: the raw sys_exit tracepoint, which every system call of every task on the
 * host runs (decoding the x86-64 number from orig_ax, intact after a seccomp refusal). Loaded
 * only when some watched call has no tracepoint of its own (or when asked, to measure the cost).
 */
SEC("tp_btf/sys_exit")
int BPF_PROG(tg_fam_obs, struct pt_regs *regs, long ret) {
  long nr = regs->orig_ax;
  __u32 call = nr == TG_NR_SOCKET ? TG_OBS_SOCKET : nr == TG_NR_SOCKETPAIR ? TG_OBS_SOCKETPAIR : 0;
  if (!(call & tg_fam_sys_exit_calls)) return 0;
  tg_fam_observe(regs, ret, nr == TG_NR_SOCKETPAIR);
  return 0;
}
