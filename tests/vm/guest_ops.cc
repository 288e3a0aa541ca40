#include "guest_ops.h"

#include <fcntl.h>
#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace tg::testing {
namespace {

constexpr size_t kPage = 4096;

// True when the mapping holding `addr` is both writable and executable (/proc/self/maps).
bool IsWx(const void* addr) {
  const auto a = reinterpret_cast<uintptr_t>(addr);
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    uintptr_t lo = 0, hi = 0;
    char perms[5] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %4s", &lo, &hi, perms) != 3) continue;
    if (a >= lo && a < hi) return perms[1] == 'w' && perms[2] == 'x';
  }
  return false;
}

int Errno() { return errno; }

int ShmSegment() { return ::shmget(IPC_PRIVATE, kPage, IPC_CREAT | 0600); }

}  // namespace

std::string OutcomeName(int outcome) {
  if (outcome == 0) return "ok";
  if (outcome == kOkWx) return "ok(W+X)";
  if (outcome < 0) return "setup-failed";
  const char* name = strerrorname_np(outcome);
  return name != nullptr ? name : std::to_string(outcome);
}

int OpSocket(int family, int type, int protocol) {
  const int fd = ::socket(family, type, protocol);
  if (fd < 0) return Errno();
  ::close(fd);
  return 0;
}

int OpSocketpairUnix() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return Errno();
  ::close(sv[0]);
  ::close(sv[1]);
  return 0;
}

int OpSocketpairUnixDgram() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) != 0) return Errno();
  ::close(sv[0]);
  ::close(sv[1]);
  return 0;
}

namespace {

socklen_t AbstractAddress(const std::string& name, sockaddr_un* addr) {
  *addr = sockaddr_un{};
  addr->sun_family = AF_UNIX;
  const size_t n = std::min(name.size(), sizeof(addr->sun_path) - 1);
  std::memcpy(addr->sun_path + 1, name.data(), n);
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
}

}  // namespace

int OpUnixDgramConnect(const std::string& name) {
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno();
  sockaddr_un addr;
  const socklen_t len = AbstractAddress(name, &addr);
  const int err = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), len) == 0 ? 0 : Errno();
  ::close(fd);
  return err;
}

int OpUnixDgramSendto(const std::string& name) {
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno();
  sockaddr_un addr;
  const socklen_t len = AbstractAddress(name, &addr);
  const int err =
      ::sendto(fd, "x", 1, MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&addr), len) == 1
          ? 0
          : Errno();
  ::close(fd);
  return err;
}

BoundDgram::BoundDgram(const std::string& name)
    : fd_(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
  sockaddr_un addr;
  const socklen_t len = AbstractAddress(name, &addr);
  bound_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), len) == 0;
}

BoundDgram::~BoundDgram() {
  if (fd_ >= 0) ::close(fd_);
}

int OpIoUringSocketUnix() {
  // Raw io_uring (no liburing): one IORING_OP_SOCKET, waited for.
  io_uring_params params{};
  const int ring = static_cast<int>(::syscall(SYS_io_uring_setup, 4, &params));
  if (ring < 0) return -1;
  if (!(params.features & IORING_FEAT_SINGLE_MMAP)) return -1;
  const size_t sq_size = params.sq_off.array + params.sq_entries * sizeof(unsigned);
  const size_t cq_size = params.cq_off.cqes + params.cq_entries * sizeof(io_uring_cqe);
  const size_t ring_size = sq_size > cq_size ? sq_size : cq_size;
  auto* rings = static_cast<char*>(::mmap(nullptr, ring_size, PROT_READ | PROT_WRITE,
                                          MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQ_RING));
  auto* sqes = static_cast<io_uring_sqe*>(::mmap(nullptr, params.sq_entries * sizeof(io_uring_sqe),
                                                 PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                                                 ring, IORING_OFF_SQES));
  if (rings == MAP_FAILED || sqes == MAP_FAILED) return -1;
  auto* sq_tail = reinterpret_cast<unsigned*>(rings + params.sq_off.tail);
  const unsigned sq_mask = *reinterpret_cast<unsigned*>(rings + params.sq_off.ring_mask);
  auto* sq_array = reinterpret_cast<unsigned*>(rings + params.sq_off.array);
  const unsigned tail = *sq_tail;
  const unsigned index = tail & sq_mask;
  std::memset(&sqes[index], 0, sizeof(io_uring_sqe));
  sqes[index].opcode = IORING_OP_SOCKET;
  sqes[index].fd = AF_UNIX;       // domain
  sqes[index].off = SOCK_STREAM;  // type
  sq_array[index] = index;
  __atomic_store_n(sq_tail, tail + 1, __ATOMIC_RELEASE);
  if (::syscall(SYS_io_uring_enter, ring, 1, 1, IORING_ENTER_GETEVENTS, nullptr, 0) != 1) {
    return -1;
  }
  auto* cqes = reinterpret_cast<io_uring_cqe*>(rings + params.cq_off.cqes);
  const unsigned cq_head = *reinterpret_cast<unsigned*>(rings + params.cq_off.head);
  const unsigned cq_mask = *reinterpret_cast<unsigned*>(rings + params.cq_off.ring_mask);
  const int res = cqes[cq_head & cq_mask].res;
  if (res >= 0) ::close(res);
  ::close(ring);
  return res >= 0 ? 0 : -res;
}

int OpMmapAnon(int prot) {
  void* p = ::mmap(nullptr, kPage, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return Errno();
  const int r = IsWx(p) ? kOkWx : 0;
  ::munmap(p, kPage);
  return r;
}

int OpMprotect(int from_prot, int to_prot) {
  void* p = ::mmap(nullptr, kPage, from_prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return -1;
  int r = ::mprotect(p, kPage, to_prot) == 0 ? (IsWx(p) ? kOkWx : 0) : Errno();
  ::munmap(p, kPage);
  return r;
}

int OpPkeyMprotectAddExec() {
  void* p = ::mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return -1;
  const int r =
      ::syscall(SYS_pkey_mprotect, p, kPage, PROT_READ | PROT_EXEC, -1) == 0 ? 0 : Errno();
  ::munmap(p, kPage);
  return r;
}

int OpShmat(int shmflg) {
  const int id = ShmSegment();
  if (id < 0) return -1;
  void* p = ::shmat(id, nullptr, shmflg);
  int r = p == reinterpret_cast<void*>(-1) ? Errno() : (IsWx(p) ? kOkWx : 0);
  if (p != reinterpret_cast<void*>(-1)) ::shmdt(p);
  ::shmctl(id, IPC_RMID, nullptr);
  return r;
}

int OpMemfdDoubleMap() {
  const int fd = ::memfd_create("tg-jit", MFD_CLOEXEC);
  if (fd < 0 || ::ftruncate(fd, kPage) != 0) return -1;
  void* w = ::mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (w == MAP_FAILED) return -1;
  void* x = ::mmap(nullptr, kPage, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
  const int r = x == MAP_FAILED ? Errno() : kOkWx;  // two views of one page: W and X
  if (x != MAP_FAILED) ::munmap(x, kPage);
  ::munmap(w, kPage);
  ::close(fd);
  return r;
}

int OpMemfdReopenDoubleMap() {
  const int fd = ::memfd_create("tg-jit", MFD_CLOEXEC);
  if (fd < 0 || ::ftruncate(fd, kPage) != 0) return -1;
  void* w = ::mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (w == MAP_FAILED) return -1;
  const int ro = ::open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_RDONLY | O_CLOEXEC);
  ::close(fd);  // no writable descriptor left: only the writable mapping remains
  if (ro < 0) return -1;
  void* x = ::mmap(nullptr, kPage, PROT_READ | PROT_EXEC, MAP_SHARED, ro, 0);
  const int r = x == MAP_FAILED ? Errno() : kOkWx;
  if (x != MAP_FAILED) ::munmap(x, kPage);
  ::munmap(w, kPage);
  ::close(ro);
  return r;
}

int OpMemfdFdThenReopenRx() {
  const int fd = ::memfd_create("tg-jit", MFD_CLOEXEC);
  if (fd < 0 || ::ftruncate(fd, kPage) != 0) return -1;
  const int ro = ::open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_RDONLY | O_CLOEXEC);
  if (ro < 0) return -1;
  void* x = ::mmap(nullptr, kPage, PROT_READ | PROT_EXEC, MAP_SHARED, ro, 0);
  // write(fd) would now change executable memory: W and X on one object.
  const int r = x == MAP_FAILED ? Errno() : kOkWx;
  if (x != MAP_FAILED) ::munmap(x, kPage);
  ::close(ro);
  ::close(fd);
  return r;
}

int OpSealedMemfdRx() {
  const int fd = ::memfd_create("tg-sealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return -1;
  std::string page(kPage, '\xc3');
  if (::write(fd, page.data(), page.size()) != static_cast<ssize_t>(page.size())) return -1;
  if (::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
    return -1;
  }
  const int ro = ::open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_RDONLY | O_CLOEXEC);
  ::close(fd);
  if (ro < 0) return -1;
  void* x = ::mmap(nullptr, kPage, PROT_READ | PROT_EXEC, MAP_SHARED, ro, 0);
  const int r = x == MAP_FAILED ? Errno() : 0;
  if (x != MAP_FAILED) ::munmap(x, kPage);
  ::close(ro);
  return r;
}

namespace {
// A page-sized file on tmpfs for the file-mapping cases; returns its path.
std::string MakeFile() {
  const std::string path = "/tmp/tg-exec-file-" + std::to_string(::getpid());
  const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0700);
  if (fd < 0) return "";
  std::string page(kPage, '\xc3');  // ret
  const bool ok = ::write(fd, page.data(), page.size()) == static_cast<ssize_t>(page.size());
  ::close(fd);
  return ok ? path : "";
}
}  // namespace

int OpExecMapOfFileOpenForWriting() {
  const std::string path = MakeFile();
  if (path.empty()) return -1;
  const int wfd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);  // a writer (could be anyone)
  const int rfd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (wfd < 0 || rfd < 0) return -1;
  void* x = ::mmap(nullptr, kPage, PROT_READ | PROT_EXEC, MAP_PRIVATE, rfd, 0);
  // Writes through wfd show up in the executable mapping until it is first written to: W+X.
  const int r = x == MAP_FAILED ? Errno() : kOkWx;
  if (x != MAP_FAILED) ::munmap(x, kPage);
  ::close(rfd);
  ::close(wfd);
  ::unlink(path.c_str());
  return r;
}

int OpExecMapOfFile() {
  const std::string path = MakeFile();
  if (path.empty()) return -1;
  const int rfd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (rfd < 0) return -1;
  void* x = ::mmap(nullptr, kPage, PROT_READ | PROT_EXEC, MAP_PRIVATE, rfd, 0);
  const int r = x == MAP_FAILED ? Errno() : 0;
  if (x != MAP_FAILED) ::munmap(x, kPage);
  ::close(rfd);
  ::unlink(path.c_str());
  return r;
}

int OpPersonalityMmap() {
  if (::personality(READ_IMPLIES_EXEC) < 0) return -1;
  return OpMmapAnon(PROT_READ | PROT_WRITE);
}

int OpPersonalityMprotect() {
  void* p = ::mmap(nullptr, kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return -1;
  if (::personality(READ_IMPLIES_EXEC) < 0) return -1;
  const int r = ::mprotect(p, kPage, PROT_READ | PROT_WRITE) == 0 ? (IsWx(p) ? kOkWx : 0) : Errno();
  ::munmap(p, kPage);
  return r;
}

int OpPersonalityShmat() {
  if (::personality(READ_IMPLIES_EXEC) < 0) return -1;
  return OpShmat(0);
}

int OpProcSelfMemWrite() {
  // Rewrite one byte of our own code with the value it already has: harmless, but it is a
  // write into an executable, non-writable mapping.
  auto* target = reinterpret_cast<unsigned char*>(&OpSocket);
  const unsigned char same = *target;
  const int fd = ::open("/proc/self/mem", O_RDWR | O_CLOEXEC);
  if (fd < 0) return Errno();
  const ssize_t n = ::pwrite(fd, &same, 1, static_cast<off_t>(reinterpret_cast<uintptr_t>(target)));
  const int r = n == 1 ? 0 : Errno();
  ::close(fd);
  return r;
}

int OpProcSelfMemRead() {
  auto* target = reinterpret_cast<unsigned char*>(&OpSocket);
  const int fd = ::open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno();
  unsigned char byte = 0;
  const ssize_t n = ::pread(fd, &byte, 1, static_cast<off_t>(reinterpret_cast<uintptr_t>(target)));
  const int r = n == 1 ? (byte == *target ? 0 : EIO) : Errno();
  ::close(fd);
  return r;
}

namespace {

// Opens `path` read-only and reads from it: 0, or the errno (EIO for an empty read).
int ReadSome(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno();
  char buf[256];
  const ssize_t n = ::read(fd, buf, sizeof(buf));
  const int r = n > 0 ? 0 : (n == 0 ? EIO : Errno());
  ::close(fd);
  return r;
}

}  // namespace

int OpProcSelfMapsRead() { return ReadSome("/proc/self/maps"); }

namespace {

// A sibling (a child of the caller, so in the caller's cgroup) that waits until it is told to
// exit, and is killed and reaped on every path.
class Sibling {
 public:
  Sibling() {
    int hold[2];
    if (::pipe2(hold, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(hold[1]);
      char byte = 0;
      while (::read(hold[0], &byte, 1) < 0 && errno == EINTR) {
      }
      ::_exit(0);
    }
    ::close(hold[0]);
    hold_ = hold[1];
  }
  ~Sibling() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::close(hold_);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int hold_ = -1;
};

// The address of a byte of our text, the same in a fork.
uintptr_t TextAddress() { return reinterpret_cast<uintptr_t>(&OpSocket); }

}  // namespace

int OpProcSiblingMemWrite() {
  Sibling sib;
  if (sib.pid() <= 0) return Errno();
  const std::string path = "/proc/" + std::to_string(sib.pid()) + "/mem";
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return Errno();
  const unsigned char same = *reinterpret_cast<unsigned char*>(TextAddress());
  const ssize_t n = ::pwrite(fd, &same, 1, static_cast<off_t>(TextAddress()));
  const int r = n == 1 ? 0 : Errno();
  ::close(fd);
  return r;
}

int OpProcSiblingMapsRead() {
  Sibling sib;
  if (sib.pid() <= 0) return Errno();
  return ReadSome("/proc/" + std::to_string(sib.pid()) + "/maps");
}

int OpPtracePokeText(bool seize) {
  Sibling sib;
  if (sib.pid() <= 0) return Errno();
  if (seize) {
    if (::ptrace(PTRACE_SEIZE, sib.pid(), nullptr, nullptr) != 0) return Errno();
    if (::ptrace(PTRACE_INTERRUPT, sib.pid(), nullptr, nullptr) != 0) return Errno();
  } else if (::ptrace(PTRACE_ATTACH, sib.pid(), nullptr, nullptr) != 0) {
    return Errno();
  }
  int status = 0;
  if (::waitpid(sib.pid(), &status, __WALL) != sib.pid() || !WIFSTOPPED(status)) return EIO;
  // Rewrite one word of the tracee's text with the value it already has.
  errno = 0;
  const long word = ::ptrace(PTRACE_PEEKTEXT, sib.pid(), TextAddress(), nullptr);
  if (errno != 0) return Errno();
  const int r = ::ptrace(PTRACE_POKETEXT, sib.pid(), TextAddress(), word) == 0 ? 0 : Errno();
  ::ptrace(PTRACE_DETACH, sib.pid(), nullptr, nullptr);
  return r;
}

int OpPtraceTraceme() {
  const pid_t child = ::fork();
  if (child < 0) return Errno();
  if (child == 0) {
    const int r = ::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) == 0 ? 0 : errno;
    ::_exit(r);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) return Errno();
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : EIO;
}

int OpJit(bool flip) {
  // mov eax, 42; ret
  static const unsigned char kCode[] = {0xb8, 0x2a, 0x00, 0x00, 0x00, 0xc3};
  const int prot = flip ? PROT_READ | PROT_WRITE : PROT_READ | PROT_WRITE | PROT_EXEC;
  void* p = ::mmap(nullptr, kPage, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return Errno();
  std::memcpy(p, kCode, sizeof(kCode));
  if (flip && ::mprotect(p, kPage, PROT_READ | PROT_EXEC) != 0) {
    const int e = Errno();
    ::munmap(p, kPage);
    return e;
  }
  using Fn = int (*)();
  const int r = reinterpret_cast<Fn>(p)();
  ::munmap(p, kPage);
  return r;
}

}  // namespace tg::testing
