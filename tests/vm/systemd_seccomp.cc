#include "systemd_seccomp.h"

#include <errno.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/socket.h>

#include <cstring>
#include <functional>
#include <memory>

namespace tg::testing {
namespace {

struct CtxDeleter {
  void operator()(scmp_filter_ctx ctx) const { seccomp_release(ctx); }
};
using Ctx = std::unique_ptr<void, CtxDeleter>;

// libseccomp's SCMP_A0()/SCMP_A2() are C99 compound literals; the same comparisons in C++.
scmp_arg_cmp Arg(unsigned arg, scmp_compare op, scmp_datum_t a, scmp_datum_t b = 0) {
  return scmp_arg_cmp{arg, op, a, b};
}

std::string Why(const char* what, int r) { return std::string(what) + ": " + std::strerror(-r); }

// seccomp_restrict_address_families(), allow-list branch: block socket() for families below
// the first allowed, above the last allowed, and every gap in between, with EAFNOSUPPORT.
// Only socket() is filtered, as in systemd: socketpair() and io_uring's socket op pass
// unfiltered (i386's multiplexed socketcall() cannot be filtered by argument at all).
std::string AddressFamilies(scmp_filter_ctx ctx, uint64_t allowed) {
  int first = 0, last = 0;
  for (int af = 1; af < 64; ++af) {
    if (!((allowed >> af) & 1)) continue;
    if (first == 0) first = af;
    last = af;
  }
  if (first == 0) {
    const int r = seccomp_rule_add_exact(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 0);
    return r < 0 ? Why("socket (all)", r) : "";
  }
  int r = seccomp_rule_add_exact(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
                                 Arg(0, SCMP_CMP_LT, static_cast<scmp_datum_t>(first)));
  if (r < 0) return Why("socket (below first)", r);
  r = seccomp_rule_add_exact(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
                             Arg(0, SCMP_CMP_GT, static_cast<scmp_datum_t>(last)));
  if (r < 0) return Why("socket (above last)", r);
  for (int af = 1; af < last; ++af) {
    if ((allowed >> af) & 1) continue;
    r = seccomp_rule_add_exact(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
                               Arg(0, SCMP_CMP_EQ, static_cast<scmp_datum_t>(af)));
    if (r < 0) return Why("socket (gap)", r);
  }
  return "";
}

// seccomp_memory_deny_write_execute() for x86-64: EPERM for mmap with PROT_WRITE|PROT_EXEC,
// mprotect and pkey_mprotect with PROT_EXEC (whatever the mapping was), shmat with SHM_EXEC.
std::string MemoryDenyWriteExecute(scmp_filter_ctx ctx) {
  int r = seccomp_rule_add_exact(
      ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(mmap), 1,
      Arg(2, SCMP_CMP_MASKED_EQ, PROT_EXEC | PROT_WRITE, PROT_EXEC | PROT_WRITE));
  if (r < 0) return Why("mmap", r);
  r = seccomp_rule_add_exact(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(mprotect), 1,
                             Arg(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC));
  if (r < 0) return Why("mprotect", r);
  r = seccomp_rule_add_exact(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(pkey_mprotect), 1,
                             Arg(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC));
  if (r < 0) return Why("pkey_mprotect", r);
  r = seccomp_rule_add_exact(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(shmat), 1,
                             Arg(2, SCMP_CMP_MASKED_EQ, SHM_EXEC, SHM_EXEC));
  if (r < 0) return Why("shmat", r);
  return "";
}

// systemd loads each directive as its own filter (seccomp_load per directive).
std::string Load(const std::function<std::string(scmp_filter_ctx)>& rules) {
  Ctx ctx(seccomp_init(SCMP_ACT_ALLOW));
  if (!ctx) return "seccomp_init failed";
  // systemd: seccomp_init_for_arch() turns NNP off; privileged callers need none.
  if (int r = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0); r < 0) return Why("nnp", r);
  if (std::string e = rules(ctx.get()); !e.empty()) return e;
  if (int r = seccomp_load(ctx.get()); r < 0) return Why("seccomp_load", r);
  return "";
}

}  // namespace

std::string InstallSystemdFilters(uint64_t allowed_families) {
  if (std::string e = Load([&](scmp_filter_ctx c) { return AddressFamilies(c, allowed_families); });
      !e.empty()) {
    return e;
  }
  return Load(MemoryDenyWriteExecute);
}

}  // namespace tg::testing
