// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * policy_wx: systemd's MemoryDenyWriteExecute= for one cgroup, as an LSM, made to hold for
 * the memory object rather than for one syscall's arguments.
 *
 * Denied with EPERM (systemd's errno) for tasks in the target cgroup and its descendants:
 *  - mmap whose *effective* protection is W+X (the hook sees prot after READ_IMPLIES_EXEC);
 *  - an executable mapping of a file that is open for writing or mapped writable anywhere,
 *    or of a memfd not sealed against writes: memfd double mapping, however the second fd
 *    was obtained (see tg_writable_elsewhere());
 *  - mprotect/pkey_mprotect asking W+X, or adding exec to a mapping that is not executable;
 *  - shmat with SHM_EXEC, and a writable shmat under READ_IMPLIES_EXEC (an RWX mapping);
 *  - beyond systemd: the writes that need no writable mapping at all, because the kernel
 *    forces them through the page protections (FOLL_FORCE) — opening a /proc/PID/mem file
 *    (/proc/self/mem included) for writing, and becoming a ptracer (PTRACE_ATTACH/SEIZE, and
 *    any other attach-mode access to another task) or asking for one (PTRACE_TRACEME), which
 *    PTRACE_POKETEXT needs first.
 * Differences from systemd's seccomp filter are listed in docs/enforcement.md.
 * No set-up exemption (unlike policy_families' tg_fam_setup_exempt): systemd's exec child, which
 * runs in the cgroup between fork and exec, maps no W+X memory and no writable-elsewhere file
 * executable (it runs systemd's own compiled code, no JIT; the ELF segments execve maps are R+X
 * views of a file nobody writes), as vm.systemd_e2e shows with the policy in force.
 *
 * Maps: tg_wx_cfg (mode, mechanism, canary), tg_wx_count (per-CPU decisions, action x detail),
 * tg_wx_canary (the canary's decisions, kept out of the others; also by detail, so the canary
 * proves each hook),
 * tg_wx_events (ring buffer of denials), tg_wx_drops (events lost to a full ring).
 */
/* policy.bpf.h brings vmlinux.h, which libbpf's headers need first. */
// clang-format off
#include "policy.bpf.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "policy_wx.h"
// clang-format on

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define TG_EPERM 1
#define TG_PROT_WRITE 0x2
#define TG_PROT_EXEC 0x4
#define TG_WX (TG_PROT_WRITE | TG_PROT_EXEC)
#define TG_VM_EXEC 0x4ul
#define TG_SHM_RDONLY 010000
#define TG_SHM_EXEC 0100000
#define TG_READ_IMPLIES_EXEC 0x0400000
#define TG_FMODE_WRITE 0x2
#define TG_TMPFS_MAGIC 0x01021994
#define TG_HUGETLBFS_MAGIC 0x958458f6
#define TG_F_SEAL_WRITE 0x0008
#define TG_F_SEAL_FUTURE_WRITE 0x0010
#define TG_PROC_SUPER_MAGIC 0x9fa0
#define TG_PTRACE_MODE_ATTACH 0x02

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct tg_wx_config);
} tg_wx_cfg SEC(".maps");

TG_COUNTER_MAP(tg_wx_count, TG_WX_COUNTERS);
TG_COUNTER_MAP(tg_wx_drops, 1);
TG_EVENT_MAP(tg_wx_events);
TG_COUNTER_MAP(tg_wx_canary, TG_WX_CANARY_COUNTERS); /* the canary's, see policy_wx.h */
TG_CGROUP_MAP(tg_wx_cgrp);                           /* lsm_global: the target cgroup */

/* Counts `detail` and decides: details below TG_WX_FIRST_DENIABLE pass, the others are
 * denied (enforce) or reported (audit). Independent of the hooking mechanism. */
static __always_inline enum tg_action tg_wx_decide_as(__u32 detail, __u64 arg0, __u64 arg1,
                                                      bool seccomp_refused) {
  __u32 zero = 0;
  struct tg_wx_config *cfg = bpf_map_lookup_elem(&tg_wx_cfg, &zero);
  const bool canary = cfg && tg_from_canary(&cfg->canary);
  if (detail < TG_WX_FIRST_DENIABLE && !seccomp_refused) {
    tg_count(canary ? (void *)&tg_wx_canary : (void *)&tg_wx_count,
             canary ? TG_ACT_ALLOW : TG_ACT_ALLOW * TG_WX_DETAILS + detail);
    return TG_ACT_ALLOW;
  }
  enum tg_action action = cfg && cfg->mode == TG_MODE_AUDIT ? TG_ACT_WOULD_DENY : TG_ACT_DENY;
  if (seccomp_refused) action = TG_ACT_DENIED_BY_SECCOMP;
  if (detail >= TG_WX_DETAILS) detail = TG_WX_DETAILS - 1; /* bounds for the verifier */
  if (canary) {
    tg_count(&tg_wx_canary, action);
    tg_count(&tg_wx_canary, TG_ACTIONS + detail);
    return action;
  }
  tg_count(&tg_wx_count, action * TG_WX_DETAILS + detail);
  tg_emit(&tg_wx_events, &tg_wx_drops, TG_POLICY_WX, action, detail, arg0, arg1);
  return action;
}

static __always_inline enum tg_action tg_wx_decide(__u32 detail, __u64 arg0, __u64 arg1) {
  return tg_wx_decide_as(detail, arg0, arg1, false);
}

/* lsm_cgroup convention: 1 allows, 0 denies with the errno set here (per program). */
static __always_inline int tg_wx_verdict(enum tg_action action) {
  if (action != TG_ACT_DENY) return 1;
  bpf_set_retval(-TG_EPERM);
  return 0;
}

/* The write seals of a memfd (shmem or hugetlbfs inode): container_of() with CO-RE offsets,
 * as memfd_file_seals_ptr() does in the kernel. */
static __always_inline unsigned int tg_memfd_seals(struct inode *inode, unsigned long magic) {
  if (magic == TG_TMPFS_MAGIC) {
    struct shmem_inode_info *info =
        (void *)inode - bpf_core_field_offset(struct shmem_inode_info, vfs_inode);
    return BPF_CORE_READ(info, seals);
  }
  struct hugetlbfs_inode_info *info =
      (void *)inode - bpf_core_field_offset(struct hugetlbfs_inode_info, vfs_inode);
  return BPF_CORE_READ(info, seals);
}

/*
 * Whether the memory object behind `file` can be written while it is mapped executable:
 *  - the file itself was opened for writing (the same fd maps W and X);
 *  - some open file counts as a writer (inode->i_writecount > 0; negative while executed);
 *  - some writable shared mapping of it exists (mapping->i_mmap_writable > 0);
 *  - it is a memfd (an unlinked shmem/hugetlbfs inode) not sealed against writing: its
 *    memfd_create() descriptor is writable but, made by alloc_file_pseudo(), never counted in
 *    i_writecount — so only F_SEAL_WRITE/F_SEAL_FUTURE_WRITE prove it immutable.
 */
static __always_inline bool tg_writable_elsewhere(struct file *file) {
  if (BPF_CORE_READ(file, f_mode) & TG_FMODE_WRITE) return true;
  struct inode *inode = BPF_CORE_READ(file, f_inode);
  if (BPF_CORE_READ(inode, i_writecount.counter) > 0) return true;
  if (BPF_CORE_READ(file, f_mapping, i_mmap_writable.counter) > 0) return true;
  unsigned long magic = BPF_CORE_READ(inode, i_sb, s_magic);
  if ((magic == TG_TMPFS_MAGIC || magic == TG_HUGETLBFS_MAGIC) &&
      BPF_CORE_READ(inode, __i_nlink) == 0) {
    return !(tg_memfd_seals(inode, magic) & (TG_F_SEAL_WRITE | TG_F_SEAL_FUTURE_WRITE));
  }
  return false;
}

static __always_inline bool tg_read_implies_exec(void) {
  struct task_struct *task = (struct task_struct *)bpf_get_current_task();
  return BPF_CORE_READ(task, personality) & TG_READ_IMPLIES_EXEC;
}

/*
 * Hook: security_mmap_file(file, reqprot, prot, flags), called by vm_mmap_pgoff() and
 * ksys_mmap_pgoff() for every mmap, anonymous ones too (file == NULL), before anything is
 * mapped (also for the ELF loader's own mappings). `prot` is the effective protection:
 * mmap_prot() has already added PROT_EXEC for READ_IMPLIES_EXEC, so a personality cannot
 * turn RW into RWX behind our back. Stable signature since 3.x (reqprot/prot split).
 * For an exec mapping of a file, tg_writable_elsewhere() asks the inode and its mapping,
 * not the descriptor, so it holds however the second descriptor was obtained.
 */
static __always_inline enum tg_action tg_wx_on_mmap(struct file *file, unsigned long reqprot,
                                                    unsigned long prot, unsigned long flags) {
  __u32 detail = TG_WX_MMAP;
  if ((prot & TG_WX) == TG_WX) {
    detail = (reqprot & TG_WX) == TG_WX ? TG_WX_MMAP_WX : TG_WX_MMAP_IMPLIED_X;
  } else if ((prot & TG_PROT_EXEC) && file && tg_writable_elsewhere(file)) {
    detail = TG_WX_MMAP_WRITABLE_FILE;
  }
  return tg_wx_decide(detail, reqprot, prot | ((__u64)flags << 32));
}
SEC("lsm_cgroup/mmap_file")
int BPF_PROG(tg_wx_mmap, struct file *file, unsigned long reqprot, unsigned long prot,
             unsigned long flags) {
  return tg_wx_verdict(tg_wx_on_mmap(file, reqprot, prot, flags));
}

/*
 * Hook: security_file_mprotect(vma, reqprot, prot), called by do_mprotect_pkey() (so for
 * mprotect and pkey_mprotect alike) once per VMA in the range, after the kernel's own
 * VM_MAY* check and before the VMA changes. `prot` again includes READ_IMPLIES_EXEC, and
 * the VMA tells whether exec is being *added* (vm_flags & VM_EXEC): systemd's seccomp rule
 * cannot see the mapping and denies every PROT_EXEC request instead.
 */
static __always_inline enum tg_action tg_wx_on_mprotect(struct vm_area_struct *vma,
                                                        unsigned long reqprot, unsigned long prot) {
  __u32 detail = TG_WX_MPROTECT;
  if ((prot & TG_WX) == TG_WX) {
    detail = TG_WX_MPROTECT_WX;
  } else if (prot & TG_PROT_EXEC) {
    unsigned long vm_flags = BPF_CORE_READ(vma, vm_flags);
    if (!(vm_flags & TG_VM_EXEC)) detail = TG_WX_MPROTECT_ADD_X;
  }
  return tg_wx_decide(detail, reqprot, prot);
}
SEC("lsm_cgroup/file_mprotect")
int BPF_PROG(tg_wx_mprot, struct vm_area_struct *vma, unsigned long reqprot, unsigned long prot) {
  return tg_wx_verdict(tg_wx_on_mprotect(vma, reqprot, prot));
}

/*
 * Hook: security_shm_shmat(perm, shmaddr, shmflg), called by do_shmat() before it maps the
 * segment, with the SysV flags (SHM_EXEC, SHM_RDONLY) as the caller gave them. do_shmat()
 * then also asks security_mmap_file() with the resulting prot (SHM_EXEC → PROT_EXEC, and
 * READ_IMPLIES_EXEC applied by mmap_prot()), so a W+X shmat is caught twice: here first, with
 * the precise detail, and again by tg_wx_mmap — in audit mode both count a would_deny.
 */
static __always_inline enum tg_action tg_wx_on_shmat(int shmflg) {
  __u32 detail = TG_WX_SHMAT;
  if (shmflg & TG_SHM_EXEC) {
    detail = TG_WX_SHMAT_EXEC;
  } else if (!(shmflg & TG_SHM_RDONLY) && tg_read_implies_exec()) {
    detail = TG_WX_SHMAT_IMPLIED_X;
  }
  return tg_wx_decide(detail, (__u64)shmflg, 0);
}
SEC("lsm_cgroup/shm_shmat")
int BPF_PROG(tg_wx_shmat, struct kern_ipc_perm *perm, char *shmaddr, int shmflg) {
  return tg_wx_verdict(tg_wx_on_shmat(shmflg));
}

/* The pid a /proc inode belongs to, or 0 when it is not a per-process entry (container_of()
 * with CO-RE offsets, as PROC_I() does: proc_inode is procfs-internal, so no helper reads it). */
static __always_inline __u32 tg_proc_inode_pid(struct inode *inode) {
  struct proc_inode *pi = (void *)inode - bpf_core_field_offset(struct proc_inode, vfs_inode);
  struct pid *pid = BPF_CORE_READ(pi, pid);
  if (!pid) return 0;
  return (__u32)BPF_CORE_READ(pid, numbers[0].nr);
}

/*
 * Whether `file` is a /proc/PID/mem (or /proc/PID/task/TID/mem) file: the one procfs file
 * whose writes go through FOLL_FORCE into any mapping of the task, executable text included.
 * Identified by what procfs makes it, all of it stable since 2.6: a file of procfs's
 * superblock (PROC_SUPER_MAGIC), a per-process entry (its proc_inode has a pid: /proc/sys,
 * /proc/irq and /proc/net entries have none), named "mem" (the per-process names are fixed by
 * the kernel's tables, tgid_base_stuff/tid_base_stuff, and only one is "mem"). Not by
 * f_op == &proc_mem_operations: that symbol is static, its address only in kallsyms (needs
 * CONFIG_KALLSYMS_ALL and a readable /proc/kallsyms), and a BPF program cannot name it portably.
 * Returns the pid of the task whose memory it is, 0 for another file.
 */
static __always_inline __u32 tg_proc_mem_pid(struct file *file) {
  struct inode *inode = BPF_CORE_READ(file, f_inode);
  if (BPF_CORE_READ(inode, i_sb, s_magic) != TG_PROC_SUPER_MAGIC) return 0;
  struct dentry *dentry = BPF_CORE_READ(file, f_path.dentry);
  if (BPF_CORE_READ(dentry, d_name.len) != 3) return 0;
  char name[4] = {};
  if (bpf_probe_read_kernel(name, sizeof(name), BPF_CORE_READ(dentry, d_name.name)) != 0) return 0;
  if (name[0] != 'm' || name[1] != 'e' || name[2] != 'm' || name[3] != 0) return 0;
  return tg_proc_inode_pid(inode);
}

/*
 * Hook: security_file_open(file), called by do_dentry_open() for every open (open, openat,
 * openat2, io_uring's openat) after f_mode holds the access mode and *before* the file's own
 * open (mem_open()): so it sees a /proc/self/mem open, which the ptrace check below never does
 * (the kernel lets a task access its own memory without asking any LSM). Stable since 4.x
 * (file_open replaced dentry_open). A read-only open stays allowed (and counted): reading memory
 * breaks no W^X; a write open is the hole, denied whatever it would write (at open time the
 * kernel does not know the offsets a later pwrite will use).
 */
static __always_inline enum tg_action tg_wx_on_file_open(struct file *file) {
  const __u32 pid = tg_proc_mem_pid(file);
  if (!pid) return TG_ACT_ALLOW; /* not this policy's file: no decision to count */
  const __u32 mode = BPF_CORE_READ(file, f_mode);
  return tg_wx_decide(mode & TG_FMODE_WRITE ? TG_WX_PROC_MEM_WRITE : TG_WX_PROC_MEM, mode, pid);
}
SEC("lsm_cgroup/file_open")
int BPF_PROG(tg_wx_fopen, struct file *file) { return tg_wx_verdict(tg_wx_on_file_open(file)); }

/*
 * Hook: security_ptrace_access_check(child, mode), called by __ptrace_may_access() for access
 * to *another* thread group (same_thread_group() returns before it): PTRACE_ATTACH and
 * PTRACE_SEIZE (PTRACE_MODE_ATTACH_REALCREDS), and the other attach-mode users — opening another
 * task's /proc/PID/mem (even read-only), process_vm_readv/writev, pidfd_getfd. Read mode
 * (/proc/PID/maps, environ, kcmp, …) is allowed and counted. `current` is the would-be tracer:
 * lsm_cgroup runs the program for tasks of the target, so a tracer outside (an admin's strace)
 * is not affected, as with every policy here. Stable since 2.6.
 */
static __always_inline enum tg_action tg_wx_on_ptrace_access(struct task_struct *child,
                                                             unsigned int mode) {
  const __u32 detail = mode & TG_PTRACE_MODE_ATTACH ? TG_WX_PTRACE_ATTACH : TG_WX_PTRACE_READ;
  return tg_wx_decide(detail, mode, (__u32)BPF_CORE_READ(child, tgid));
}
SEC("lsm_cgroup/ptrace_access_check")
int BPF_PROG(tg_wx_ptrace, struct task_struct *child, unsigned int mode) {
  return tg_wx_verdict(tg_wx_on_ptrace_access(child, mode));
}

/*
 * Hook: security_ptrace_traceme(parent), called by ptrace_traceme() (PTRACE_TRACEME) before
 * the caller becomes its parent's tracee: the way a task in the target invites a tracer from
 * outside it (whose own attach the hook above never sees). Stable since 2.6.
 */
static __always_inline enum tg_action tg_wx_on_traceme(struct task_struct *parent) {
  return tg_wx_decide(TG_WX_PTRACE_TRACEME, 0, (__u32)BPF_CORE_READ(parent, tgid));
}
SEC("lsm_cgroup/ptrace_traceme")
int BPF_PROG(tg_wx_traceme, struct task_struct *parent) {
  return tg_wx_verdict(tg_wx_on_traceme(parent));
}

/*
 * lsm_global: the same hooks as global lsm/ programs filtered to the target cgroup and
 * its descendants (see policy_families.bpf.c). 0 allows, -EPERM denies; an earlier BPF-LSM
 * program's denial (`ret`) is kept.
 */
SEC("lsm/mmap_file")
int BPF_PROG(tg_wx_gmmap, struct file *file, unsigned long reqprot, unsigned long prot,
             unsigned long flags, int ret) {
  if (ret != 0 || !tg_in_target(&tg_wx_cgrp)) return ret;
  return tg_wx_on_mmap(file, reqprot, prot, flags) == TG_ACT_DENY ? -TG_EPERM : 0;
}

SEC("lsm/file_mprotect")
int BPF_PROG(tg_wx_gmprot, struct vm_area_struct *vma, unsigned long reqprot, unsigned long prot,
             int ret) {
  if (ret != 0 || !tg_in_target(&tg_wx_cgrp)) return ret;
  return tg_wx_on_mprotect(vma, reqprot, prot) == TG_ACT_DENY ? -TG_EPERM : 0;
}

SEC("lsm/shm_shmat")
int BPF_PROG(tg_wx_gshmat, struct kern_ipc_perm *perm, char *shmaddr, int shmflg, int ret) {
  if (ret != 0 || !tg_in_target(&tg_wx_cgrp)) return ret;
  return tg_wx_on_shmat(shmflg) == TG_ACT_DENY ? -TG_EPERM : 0;
}

SEC("lsm/file_open")
int BPF_PROG(tg_wx_gfopen, struct file *file, int ret) {
  if (ret != 0 || !tg_in_target(&tg_wx_cgrp)) return ret;
  return tg_wx_on_file_open(file) == TG_ACT_DENY ? -TG_EPERM : 0;
}

SEC("lsm/ptrace_access_check")
int BPF_PROG(tg_wx_gptrace, struct task_struct *child, unsigned int mode, int ret) {
  if (ret != 0 || !tg_in_target(&tg_wx_cgrp)) return ret;
  return tg_wx_on_ptrace_access(child, mode) == TG_ACT_DENY ? -TG_EPERM : 0;
}

SEC("lsm/ptrace_traceme")
int BPF_PROG(tg_wx_gtrme, struct task_struct *parent, int ret) {
  if (ret != 0 || !tg_in_target(&tg_wx_cgrp)) return ret;
  return tg_wx_on_traceme(parent) == TG_ACT_DENY ? -TG_EPERM : 0;
}

/*
 * observe: audit only, at the exit of mmap, mprotect, pkey_mprotect and shmat, filtered to the
 * target (see policy_families.bpf.c). What a system call's arguments show: mmap/mprotect/
 * pkey_mprotect asking PROT_WRITE|PROT_EXEC, shmat with SHM_EXEC. A call that succeeded is a
 * would_deny; one that failed with -EPERM is systemd's MemoryDenyWriteExecute= (denied_by_seccomp,
 * when asked; seccomp also refuses any PROT_EXEC mprotect, counted the same). Not visible here,
 * unlike the LSM hooks: READ_IMPLIES_EXEC, memfd/file double mappings, adding exec to a mapping,
 * /proc/PID/mem write opens (an openat's exit has no file) and ptrace.
 * Allowed calls are not counted (every mmap of the cgroup would be). `nr` is a constant in each
 * per-call program, so each keeps only its own branch.
 */
static __always_inline void tg_wx_observe(long nr, struct pt_regs *regs, long ret) {
  if (!tg_in_target(&tg_wx_cgrp)) return;
  unsigned long arg = BPF_CORE_READ(regs, dx); /* prot, or shmat's shmflg */
  __u32 detail;
  if (nr == TG_NR_SHMAT) {
    if (!(arg & TG_SHM_EXEC)) return;
    detail = TG_WX_SHMAT_EXEC;
  } else if (nr == TG_NR_MMAP) {
    if ((arg & TG_WX) != TG_WX) return;
    detail = TG_WX_MMAP_WX;
  } else {
    if ((arg & TG_WX) == TG_WX) {
      detail = TG_WX_MPROTECT_WX;
    } else if ((arg & TG_PROT_EXEC) && ret == -TG_ERR_EPERM) {
      detail = TG_WX_MPROTECT_ADD_X; /* only ever counted as seccomp's refusal */
    } else {
      return;
    }
  }
  bool seccomp_refused = ret == -TG_ERR_EPERM;
  if (ret < 0 && ret > -4096 && !seccomp_refused) return;
  if (seccomp_refused) {
    __u32 zero = 0;
    struct tg_wx_config *cfg = bpf_map_lookup_elem(&tg_wx_cfg, &zero);
    if (!cfg || !cfg->observe.seccomp) return;
  }
  tg_wx_decide_as(detail, arg, arg, seccomp_refused);
}

/* Hooks: each call's own exit tracepoint (see policy_families.bpf.c). */
SEC("tracepoint/syscalls/sys_exit_mmap")
int tg_wx_obs_mmap(struct tg_sys_exit_record *ctx) {
  tg_wx_observe(TG_NR_MMAP, tg_user_regs(), ctx->ret);
  return 0;
}

SEC("tracepoint/syscalls/sys_exit_mprotect")
int tg_wx_obs_mprot(struct tg_sys_exit_record *ctx) {
  tg_wx_observe(TG_NR_MPROTECT, tg_user_regs(), ctx->ret);
  return 0;
}

SEC("tracepoint/syscalls/sys_exit_pkey_mprotect")
int tg_wx_obs_pkey(struct tg_sys_exit_record *ctx) {
  tg_wx_observe(TG_NR_PKEY_MPROTECT, tg_user_regs(), ctx->ret);
  return 0;
}

SEC("tracepoint/syscalls/sys_exit_shmat")
int tg_wx_obs_shmat(struct tg_sys_exit_record *ctx) {
  tg_wx_observe(TG_NR_SHMAT, tg_user_regs(), ctx->ret);
  return 0;
}

/* The calls (TG_OBS_* bits) observed at the sys_exit fallback (see policy_families.bpf.c). */
const volatile __u32 tg_wx_sys_exit_calls = 0;

/* Fallback, per call: the raw sys_exit tracepoint, run by every system call on the host. */
SEC("tp_btf/sys_exit")
int BPF_PROG(tg_wx_obs, struct pt_regs *regs, long ret) {
  long nr = regs->orig_ax;
  __u32 call = nr == TG_NR_MMAP            ? TG_OBS_MMAP
               : nr == TG_NR_MPROTECT      ? TG_OBS_MPROTECT
               : nr == TG_NR_PKEY_MPROTECT ? TG_OBS_PKEY_MPROTECT
               : nr == TG_NR_SHMAT         ? TG_OBS_SHMAT
                                           : 0;
  if (!(call & tg_wx_sys_exit_calls)) return 0;
  tg_wx_observe(nr, regs, ret);
  return 0;
}
