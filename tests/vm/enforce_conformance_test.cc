// The conformance table (docs/enforcement.md), measured in a stock Debian kernel with real BPF-LSM:
// every family and memory operation, run in a fresh process
//   - with no policy at all (baseline),
//   - under systemd's own seccomp filters (RestrictAddressFamilies=AF_INET AF_INET6 +
//     MemoryDenyWriteExecute=yes, built with libseccomp as systemd builds them),
//   - with tunnelguard enforcing on the target cgroup: inside it, in a child cgroup created
//     after attach, and outside it,
//   - with tunnelguard in audit mode (flipped through the pinned config map, no reload),
// and each decision checked in the counters. Where systemd and tunnelguard differ, the case
// must say why (a hole the LSM closes, or a documented relaxation) — and nowhere else.
// A second table does the same for the unix-notify family mode (AF_UNIX for sd_notify only)
// against what a Type=notify unit can ask systemd for (AF_UNIX AF_INET AF_INET6).
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "bpf/policy_families.h"
#include "guest_ops.h"
#include "guest_support.h"
#include "test_support.h"

namespace tg::testing {
namespace {

enum class Expect { kBaseline, kEperm, kEafnosupport };

struct Case {
  const char* name;
  PolicyKind policy;
  std::function<int()> op;
  Expect lsm;              // tunnelguard enforcing, inside the cgroup
  Expect systemd;          // systemd's seccomp filters
  const char* detail;      // counter detail the decision lands in
  int enforce_hits;        // denials counted in enforce mode
  int audit_hits;          // would_deny counted in audit mode
  const char* difference;  // why tunnelguard and systemd differ (nullptr: they must agree)
  // would_deny counted under `detail` in audit, when it differs from the rule below (-1)
  int audit_detail_hits = -1;
};

int Resolve(Expect e, int baseline) {
  switch (e) {
    case Expect::kBaseline:
      return baseline;
    case Expect::kEperm:
      return EPERM;
    case Expect::kEafnosupport:
      return EAFNOSUPPORT;
  }
  return -1;
}

constexpr PolicyKind kFam = PolicyKind::kAddressFamilies;
constexpr PolicyKind kWx = PolicyKind::kWxMemory;
constexpr Expect kBase = Expect::kBaseline;
constexpr Expect kEperm = Expect::kEperm;
constexpr Expect kEafno = Expect::kEafnosupport;

const char kHoleSocketpair[] =
    "hole closed: seccomp filters socket() only; the LSM hook sees socketpair's sockets";
const char kHoleIoUring[] =
    "hole closed: seccomp filters socket() only; io_uring creates sockets without it";
const char kHoleMemfd[] =
    "hole closed: W^X of the memory object (an exec mapping of a file writable elsewhere)";
const char kHolePersonality[] =
    "hole closed: effective protection (READ_IMPLIES_EXEC turns RW into RWX)";
const char kHoleProcMem[] =
    "hole closed (beyond systemd): a /proc/PID/mem write needs no writable mapping "
    "(FOLL_FORCE); the LSM refuses the write open";
const char kHolePtrace[] =
    "hole closed (beyond systemd): POKETEXT writes text through FOLL_FORCE; "
    "MemoryDenyWriteExecute= does not filter ptrace(), the LSM refuses the attach";
const char kRelaxKeepExec[] =
    "relaxation: systemd denies every PROT_EXEC mprotect; the LSM sees the mapping and only "
    "denies adding exec or W+X";

std::vector<Case> Cases() {
  return {
      {"socket(AF_UNIX)", kFam, [] { return OpSocket(AF_UNIX, SOCK_STREAM, 0); }, kEafno, kEafno,
       "unix", 1, 1, nullptr},
      {"socketpair(AF_UNIX)", kFam, OpSocketpairUnix, kEafno, kBase, "unix", 1, 2, kHoleSocketpair},
      {"io_uring IORING_OP_SOCKET(AF_UNIX)", kFam, OpIoUringSocketUnix, kEafno, kBase, "unix", 1, 1,
       kHoleIoUring},
      {"socket(AF_NETLINK)", kFam, [] { return OpSocket(AF_NETLINK, SOCK_RAW, 0); }, kEafno, kEafno,
       "netlink", 1, 1, nullptr},
      {"socket(AF_PACKET)", kFam, [] { return OpSocket(AF_PACKET, SOCK_RAW, 0); }, kEafno, kEafno,
       "packet", 1, 1, nullptr},
      {"socket(AF_INET)", kFam, [] { return OpSocket(AF_INET, SOCK_STREAM, 0); }, kBase, kBase,
       "inet", 0, 0, nullptr},
      {"socket(AF_INET6)", kFam, [] { return OpSocket(AF_INET6, SOCK_DGRAM, 0); }, kBase, kBase,
       "inet6", 0, 0, nullptr},
      {"socket(AF_XDP)", kFam, [] { return OpSocket(AF_XDP, SOCK_RAW, 0); }, kEafno, kEafno, "xdp",
       1, 1, nullptr},
      {"socket(AF_VSOCK)", kFam, [] { return OpSocket(AF_VSOCK, SOCK_STREAM, 0); }, kEafno, kEafno,
       "vsock", 1, 1, nullptr},
      {"socket(AF_ALG)", kFam, [] { return OpSocket(AF_ALG, SOCK_SEQPACKET, 0); }, kEafno, kEafno,
       "alg", 1, 1, nullptr},
      {"socket(AF_CAN)", kFam, [] { return OpSocket(AF_CAN, SOCK_RAW, 1); }, kEafno, kEafno, "can",
       1, 1, nullptr},
      {"socket(AF_BLUETOOTH)", kFam, [] { return OpSocket(AF_BLUETOOTH, SOCK_RAW, 1); }, kEafno,
       kEafno, "bluetooth", 1, 1, nullptr},

      {"mmap anon RW", kWx, [] { return OpMmapAnon(PROT_READ | PROT_WRITE); }, kBase, kBase, "mmap",
       0, 0, nullptr},
      {"mmap anon RX", kWx, [] { return OpMmapAnon(PROT_READ | PROT_EXEC); }, kBase, kBase, "mmap",
       0, 0, nullptr},
      {"mmap anon RWX", kWx, [] { return OpMmapAnon(PROT_READ | PROT_WRITE | PROT_EXEC); }, kEperm,
       kEperm, "mmap_wx", 1, 1, nullptr},
      {"mprotect RW->RX (adds exec)", kWx,
       [] { return OpMprotect(PROT_READ | PROT_WRITE, PROT_READ | PROT_EXEC); }, kEperm, kEperm,
       "mprotect_add_exec", 1, 1, nullptr},
      {"mprotect RW->RWX", kWx,
       [] { return OpMprotect(PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE | PROT_EXEC); },
       kEperm, kEperm, "mprotect_wx", 1, 1, nullptr},
      {"mprotect RX->RX (keeps exec)", kWx,
       [] { return OpMprotect(PROT_READ | PROT_EXEC, PROT_READ | PROT_EXEC); }, kBase, kEperm,
       "mprotect", 0, 0, kRelaxKeepExec},
      {"mprotect RX->R (drops exec)", kWx,
       [] { return OpMprotect(PROT_READ | PROT_EXEC, PROT_READ); }, kBase, kBase, "mprotect", 0, 0,
       nullptr},
      {"pkey_mprotect RW->RX", kWx, OpPkeyMprotectAddExec, kEperm, kEperm, "mprotect_add_exec", 1,
       1, nullptr},
      // do_shmat() asks shm_shmat, then mmap_file: audit counts a would_deny at each hook.
      {"shmat SHM_EXEC", kWx, [] { return OpShmat(SHM_EXEC); }, kEperm, kEperm, "shmat_exec", 1, 2,
       nullptr},
      {"shmat RW", kWx, [] { return OpShmat(0); }, kBase, kBase, "shmat", 0, 0, nullptr},
      {"memfd double mapping (RW + RX)", kWx, OpMemfdDoubleMap, kEperm, kBase,
       "mmap_exec_writable_file", 1, 1, kHoleMemfd},
      {"memfd RW map + RX map via /proc reopen", kWx, OpMemfdReopenDoubleMap, kEperm, kBase,
       "mmap_exec_writable_file", 1, 1, kHoleMemfd},
      {"memfd RW fd + RX map via /proc reopen", kWx, OpMemfdFdThenReopenRx, kEperm, kBase,
       "mmap_exec_writable_file", 1, 1, kHoleMemfd},
      {"sealed memfd (F_SEAL_WRITE) mapped RX", kWx, OpSealedMemfdRx, kBase, kBase, "mmap", 0, 0,
       nullptr},
      {"RX map of a file open for writing", kWx, OpExecMapOfFileOpenForWriting, kEperm, kBase,
       "mmap_exec_writable_file", 1, 1, kHoleMemfd},
      {"RX map of a file (no writer)", kWx, OpExecMapOfFile, kBase, kBase, "mmap", 0, 0, nullptr},
      {"READ_IMPLIES_EXEC + mmap RW", kWx, OpPersonalityMmap, kEperm, kBase, "mmap_implied_exec", 1,
       1, kHolePersonality},
      {"READ_IMPLIES_EXEC + mprotect RW", kWx, OpPersonalityMprotect, kEperm, kBase, "mprotect_wx",
       1, 1, kHolePersonality},
      {"READ_IMPLIES_EXEC + shmat RW", kWx, OpPersonalityShmat, kEperm, kBase, "shmat_implied_exec",
       1, 2, kHolePersonality},
      {"/proc/self/mem write to own text", kWx, OpProcSelfMemWrite, kEperm, kBase, "proc_mem_write",
       1, 1, kHoleProcMem},
      // mem_open() asks the attach-mode ptrace check after file_open: audit counts both.
      {"/proc/PID/mem write to a sibling's text", kWx, OpProcSiblingMemWrite, kEperm, kBase,
       "proc_mem_write", 1, 2, kHoleProcMem, 1},
      {"/proc/self/mem read-only", kWx, OpProcSelfMemRead, kBase, kBase, "proc_mem", 0, 0, nullptr},
      {"/proc/self/maps read", kWx, OpProcSelfMapsRead, kBase, kBase, "", 0, 0, nullptr},
      {"/proc/PID/maps of a sibling", kWx, OpProcSiblingMapsRead, kBase, kBase, "ptrace_read", 0, 0,
       nullptr},
      {"ptrace ATTACH + POKETEXT a sibling's text", kWx, [] { return OpPtracePokeText(false); },
       kEperm, kBase, "ptrace_attach", 1, 1, kHolePtrace},
      {"ptrace SEIZE + POKETEXT a sibling's text", kWx, [] { return OpPtracePokeText(true); },
       kEperm, kBase, "ptrace_attach", 1, 1, kHolePtrace},
      {"ptrace TRACEME (a child asks us to trace it)", kWx, OpPtraceTraceme, kEperm, kBase,
       "ptrace_traceme", 1, 1, kHolePtrace},
  };
}

struct Measured {
  int baseline = -1, systemd = -1, target = -1, child = -1, outside = -1, audit = -1;
  uint64_t enforce_counted = 0, audit_counted = 0;
  uint64_t enforce_allowed = 0;  // allow decisions under the case's detail, in the target
};

uint64_t Allowed(const PolicyStatus& s, const std::string& detail) {
  auto it = s.by_detail.find(detail);
  return it == s.by_detail.end() ? 0 : it->second.allow;
}

uint64_t Denials(const PolicyStatus& s, const std::string& detail, bool audit) {
  auto it = s.by_detail.find(detail);
  if (it == s.by_detail.end()) return 0;
  return audit ? it->second.would_deny : it->second.deny;
}

// One table's policy: what tunnelguard allows, what systemd's filter allows, and unix-notify's
// peer ("" without that mode).
struct TableSetup {
  uint64_t allowed = 0;
  uint64_t seccomp_families = 0;
  std::string notify_socket;
};

// Phase 1: enforce. Counters are checked around the in-target run of each case.
void MeasureEnforce(const std::vector<Case>& cases, const Attachment& att,
                    std::vector<Measured>& m) {
  const GuestCgroups& cg = Cgroups();
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    const PolicyStatus before = att.Read(c.policy);
    const PolicyStatus other_before = att.Read(c.policy == kFam ? kWx : kFam);
    m[i].target = RunInChild(In(cg.target), c.op);
    const PolicyStatus after = att.Read(c.policy);
    const PolicyStatus other_after = att.Read(c.policy == kFam ? kWx : kFam);
    m[i].enforce_counted = Denials(after, c.detail, false) - Denials(before, c.detail, false);
    m[i].enforce_allowed = Allowed(after, c.detail) - Allowed(before, c.detail);
    EXPECT_EQ(after.decisions.deny - before.decisions.deny, static_cast<uint64_t>(c.enforce_hits))
        << c.name << ": denials of the whole policy";
    EXPECT_EQ(other_after.decisions.deny, other_before.decisions.deny)
        << c.name << ": the other policy denied something";
    EXPECT_EQ(after.decisions.would_deny, before.decisions.would_deny) << c.name;
    m[i].child = RunInChild(In(cg.child), c.op);
    m[i].outside = RunInChild(In(cg.outside), c.op);
  }
}

// Phase 2: audit, flipped in the pinned config maps without reload.
void MeasureAudit(const std::vector<Case>& cases, const Attachment& att, std::vector<Measured>& m) {
  const GuestCgroups& cg = Cgroups();
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    const PolicyStatus before = att.Read(c.policy);
    m[i].audit = RunInChild(In(cg.target), c.op);
    const PolicyStatus after = att.Read(c.policy);
    m[i].audit_counted = Denials(after, c.detail, true) - Denials(before, c.detail, true);
    EXPECT_EQ(after.decisions.deny, before.decisions.deny) << c.name << ": denied in audit";
    EXPECT_EQ(after.decisions.would_deny - before.decisions.would_deny,
              static_cast<uint64_t>(c.audit_hits))
        << c.name;
  }
}

void PrintTable(const std::vector<Case>& cases, const std::vector<Measured>& m) {
  std::printf(
      "TG-TABLE | case | baseline | systemd | enforce: target | child | outside | "
      "audit: target | counted enforce/audit | difference from systemd |\n");
  std::printf("TG-TABLE |---|---|---|---|---|---|---|---|---|\n");
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    const Measured& r = m[i];
    std::printf("TG-TABLE | %s | %s | %s | %s | %s | %s | %s | %llu/%llu | %s |\n", c.name,
                OutcomeName(r.baseline).c_str(), OutcomeName(r.systemd).c_str(),
                OutcomeName(r.target).c_str(), OutcomeName(r.child).c_str(),
                OutcomeName(r.outside).c_str(), OutcomeName(r.audit).c_str(),
                static_cast<unsigned long long>(r.enforce_counted),
                static_cast<unsigned long long>(r.audit_counted), c.difference ? c.difference : "");
  }
}

void CheckRow(const Case& c, const Measured& r) {
  SCOPED_TRACE(c.name);
  ASSERT_GE(r.baseline, 0) << "setup failed";
  EXPECT_EQ(r.systemd, Resolve(c.systemd, r.baseline)) << "systemd";
  EXPECT_EQ(r.target, Resolve(c.lsm, r.baseline)) << "enforce, in the target";
  EXPECT_EQ(r.child, r.target) << "a child cgroup created after attach is covered";
  EXPECT_EQ(r.outside, r.baseline) << "outside the cgroup nothing changes";
  EXPECT_EQ(r.audit, r.baseline) << "audit never changes an outcome";
  if (c.detail[0] != '\0' && c.lsm == kBase) {
    // An allowed call is a decision too: counted under its own detail (proc_mem, ptrace_read,
    // mmap, an allowed family, unix_notify, …), so the hook is shown to have seen it.
    EXPECT_GE(r.enforce_allowed, 1u) << "allow counted under " << c.detail;
  }
  if (c.detail[0] != '\0') {
    // The case's own detail: every denial in enforce; in audit, shmat's second hook counts
    // under mmap_*, so the detail sees one.
    EXPECT_EQ(r.enforce_counted, static_cast<uint64_t>(c.enforce_hits));
    const int audit_detail = c.audit_detail_hits >= 0 ? c.audit_detail_hits
                             : std::string(c.detail).rfind("shmat", 0) == 0
                                 ? std::min(c.audit_hits, 1)
                                 : c.audit_hits;
    EXPECT_EQ(r.audit_counted, static_cast<uint64_t>(audit_detail));
  }
  // The differences are exactly the documented ones.
  const bool differs = Resolve(c.lsm, r.baseline) != Resolve(c.systemd, r.baseline);
  EXPECT_EQ(differs, c.difference != nullptr);
  // A hole is only a hole if the baseline really succeeds with W+X memory or a socket.
  if (c.difference != nullptr && c.difference == std::string(kHoleMemfd)) {
    EXPECT_EQ(r.baseline, kOkWx);
  }
  if (c.difference != nullptr && c.difference == std::string(kHolePersonality)) {
    EXPECT_EQ(r.baseline, kOkWx) << "READ_IMPLIES_EXEC made no RWX mapping";
  }
}

void CheckTable(const std::vector<Case>& cases, const TableSetup& setup) {
  const GuestCgroups& cg = Cgroups();
  std::vector<Measured> m(cases.size());
  // Phase 0: nothing attached anywhere.
  for (size_t i = 0; i < cases.size(); ++i) {
    m[i].baseline = RunInChild(In(cg.outside), cases[i].op);
    m[i].systemd = RunInChild(UnderSystemd(cg.outside, setup.seccomp_families), cases[i].op);
  }
  std::string error;
  auto att = Attachment::Attach(cg.target, Mode::kEnforce, setup.allowed, /*wx=*/true, &error,
                                std::nullopt, setup.notify_socket);
  ASSERT_TRUE(att.has_value()) << error;
  ASSERT_EQ(::mkdir(cg.child.c_str(), 0755), 0) << "child cgroup, created after attach";
  MeasureEnforce(cases, *att, m);
  ASSERT_TRUE(att->SetModeAll(Mode::kAudit));
  MeasureAudit(cases, *att, m);
  att.reset();
  ::rmdir(cg.child.c_str());
  PrintTable(cases, m);
  for (size_t i = 0; i < cases.size(); ++i) CheckRow(cases[i], m[i]);
}

TEST(Conformance, TableAgainstSystemdSeccomp) {
  TG_REQUIRE_ROOT();
  const uint64_t allowed = Families({AF_INET, AF_INET6});
  CheckTable(Cases(), {allowed, allowed, ""});
}

const char kStricterPeer[] =
    "stricter (beyond systemd): unix-notify allows AF_UNIX datagrams to the notify socket "
    "only; RestrictAddressFamilies= can only allow AF_UNIX whole";

// unix-notify (families inet,inet6,unix-notify) against what a Type=notify unit can ask systemd
// for (RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6: sd_notify needs AF_UNIX).
std::vector<Case> UnixNotifyCases(const std::string& notify, const std::string& other) {
  return {
      {"unix-notify: connect() to the notify socket", kFam,
       [notify] { return OpUnixDgramConnect(notify); }, kBase, kBase, "unix_notify", 0, 0, nullptr},
      {"unix-notify: sendto() the notify socket", kFam,
       [notify] { return OpUnixDgramSendto(notify); }, kBase, kBase, "unix_notify", 0, 0, nullptr},
      {"unix-notify: connect() to another socket", kFam,
       [other] { return OpUnixDgramConnect(other); }, kEperm, kBase, "unix_peer", 1, 1,
       kStricterPeer},
      {"unix-notify: sendto() another socket", kFam, [other] { return OpUnixDgramSendto(other); },
       kEperm, kBase, "unix_peer", 1, 1, kStricterPeer},
      {"unix-notify: socketpair(AF_UNIX, SOCK_DGRAM)", kFam, OpSocketpairUnixDgram, kEafno, kBase,
       "unix_socketpair", 1, 1, kStricterPeer},
      {"unix-notify: socketpair(AF_UNIX, SOCK_STREAM)", kFam, OpSocketpairUnix, kEafno, kBase,
       "unix", 1, 2, kStricterPeer},
      {"unix-notify: socket(AF_UNIX, SOCK_STREAM)", kFam,
       [] { return OpSocket(AF_UNIX, SOCK_STREAM, 0); }, kEafno, kBase, "unix", 1, 1,
       kStricterPeer},
      {"unix-notify: socket(AF_UNIX, SOCK_SEQPACKET)", kFam,
       [] { return OpSocket(AF_UNIX, SOCK_SEQPACKET, 0); }, kEafno, kBase, "unix", 1, 1,
       kStricterPeer},
      {"unix-notify: socket(AF_UNIX, SOCK_DGRAM)", kFam,
       [] { return OpSocket(AF_UNIX, SOCK_DGRAM, 0); }, kBase, kBase, "unix", 0, 0, nullptr},
      {"unix-notify: socket(AF_NETLINK)", kFam, [] { return OpSocket(AF_NETLINK, SOCK_RAW, 0); },
       kEafno, kEafno, "netlink", 1, 1, nullptr},
      {"unix-notify: socket(AF_INET)", kFam, [] { return OpSocket(AF_INET, SOCK_STREAM, 0); },
       kBase, kBase, "inet", 0, 0, nullptr},
  };
}

TEST(Conformance, UnixNotifyTableAgainstSystemdSeccomp) {
  TG_REQUIRE_ROOT();
  const std::string notify = "tg-conformance-notify-" + std::to_string(::getpid());
  const std::string other = "tg-conformance-other-" + std::to_string(::getpid());
  const BoundDgram notify_socket(notify);
  const BoundDgram other_socket(other);
  ASSERT_TRUE(notify_socket.bound() && other_socket.bound());
  const uint64_t inet = Families({AF_INET, AF_INET6});
  CheckTable(UnixNotifyCases(notify, other), {inet | (uint64_t{1} << TG_FAM_UNIX_NOTIFY_BIT),
                                              inet | Families({AF_UNIX}), "@" + notify});
}

}  // namespace
}  // namespace tg::testing
