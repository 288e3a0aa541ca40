// The operations of the conformance table, each run in a fresh child process. Each returns an
// Outcome: 0 (succeeded), an errno, or kOkWx (succeeded *and* left memory that is writable and
// executable at once — proof that a W^X hole is real, not just a call that returned 0).
#ifndef TUNNELGUARD_TESTS_VM_GUEST_OPS_H_
#define TUNNELGUARD_TESTS_VM_GUEST_OPS_H_

#include <string>

namespace tg::testing {

inline constexpr int kOkWx = 255;
std::string OutcomeName(int outcome);  // "ok", "ok(W+X)", "EPERM", "EAFNOSUPPORT", …

int OpSocket(int family, int type, int protocol);
int OpSocketpairUnix();
int OpSocketpairUnixDgram();  // socketpair(AF_UNIX, SOCK_DGRAM): both sockets pass socket_create
// An AF_UNIX datagram socket that connect()s to (or sendto()s, without waiting, a byte to) the
// abstract socket @`name` (unix-notify's peer rule).
int OpUnixDgramConnect(const std::string& name);
int OpUnixDgramSendto(const std::string& name);

// An abstract datagram socket @`name` bound by the calling process (a stand-in for systemd's
// notify socket, or any other peer, outside the tested cgroups); closed on scope exit.
class BoundDgram {
 public:
  explicit BoundDgram(const std::string& name);
  BoundDgram(const BoundDgram&) = delete;
  BoundDgram& operator=(const BoundDgram&) = delete;
  ~BoundDgram();
  bool bound() const { return bound_; }

 private:
  int fd_ = -1;
  bool bound_ = false;
};
int OpIoUringSocketUnix();  // AF_UNIX socket created by io_uring's IORING_OP_SOCKET

int OpMmapAnon(int prot);                    // a private anonymous mapping with `prot`
int OpMprotect(int from_prot, int to_prot);  // map anonymous `from`, mprotect to `to`
int OpPkeyMprotectAddExec();                 // RW → RX with pkey_mprotect(pkey -1)
int OpShmat(int shmflg);                     // SysV segment attached with `shmflg`
int OpMemfdDoubleMap();        // memfd mapped RW and RX (MAP_SHARED): two views, one page
int OpMemfdReopenDoubleMap();  // RW mapping kept, fd reopened O_RDONLY via /proc, mapped RX
int OpMemfdFdThenReopenRx();   // RW memfd fd kept (never mapped), RX map via a /proc reopen
int OpSealedMemfdRx();         // memfd written, sealed against writes, mapped RX (runc style)
int OpExecMapOfFileOpenForWriting();  // tmpfs file open O_RDWR elsewhere, mapped RX privately
int OpExecMapOfFile();                // the same file with no writer left: like a library
int OpPersonalityMmap();              // READ_IMPLIES_EXEC, then mmap RW (effectively RWX)
int OpPersonalityMprotect();  // mapping RW, READ_IMPLIES_EXEC, mprotect RW (effectively RWX)
int OpPersonalityShmat();     // READ_IMPLIES_EXEC, then a writable shmat (effectively RWX)
int OpProcSelfMemWrite();     // write our own text through /proc/self/mem (FOLL_FORCE)
int OpProcSelfMemRead();      // read our own text through /proc/self/mem opened read-only
int OpProcSelfMapsRead();     // read /proc/self/maps (the Go runtime and glibc do)
int OpProcSiblingMemWrite();  // a child's text written through its /proc/PID/mem
int OpProcSiblingMapsRead();  // a child's /proc/PID/maps (a read-mode ptrace access check)
// PTRACE_ATTACH (or SEIZE + INTERRUPT) a child, then POKETEXT a word of its text (the value it
// already has): the attach is refused, or the write into its executable text succeeds.
int OpPtracePokeText(bool seize);
int OpPtraceTraceme();  // a child asks to be traced by us (its result is its exit code)

// A JIT-style program: code written into memory, then run. `flip`: map RW, write, mprotect to
// RX (W^X-correct JITs); else map RWX. Returns 42 when the generated code ran, else an errno.
int OpJit(bool flip);

}  // namespace tg::testing

#endif  // TUNNELGUARD_TESTS_VM_GUEST_OPS_H_
