#include "subprocess.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include "agent/target/cgroup.h"

namespace tg::testing {

std::string TestOwnerMark() {
  // Field 22 of /proc/self/stat: the start time, so a reused pid is not taken for this one.
  const std::string stat = ReadFile("/proc/self/stat");
  std::istringstream rest(stat.substr(stat.rfind(')') + 2));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
  }
  return std::to_string(::getpid()) + ":" + field;
}

namespace {

// In the child, before exec: die with the test binary even when it is SIGKILLed or crashes
// (the kernel sends SIGKILL when the forking thread exits), lead an own process group so the
// destructor's kill reaches grandchildren too (nginx workers, shells), and carry the owner's
// mark so tests/support/cleanup-leftovers.sh can find what a dead test binary left.
void BindToTestBinary(pid_t parent, const std::string& mark) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect
  ::setpgid(0, 0);
  ::setenv(kTestOwnerEnv, mark.c_str(), 1);
}

}  // namespace

Subprocess Subprocess::Start(const std::vector<std::string>& argv, const Options& options) {
  static const std::string mark = TestOwnerMark();
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) std::abort();
  if (pid == 0) {
    BindToTestBinary(parent, mark);
    if (!options.cgroup_dir.empty()) {
      std::ofstream(options.cgroup_dir + "/cgroup.procs") << ::getpid() << std::flush;
    }
    for (const auto& [k, v] : options.env) ::setenv(k.c_str(), v.c_str(), 1);
    if (!options.output_path.empty()) {
      const int fd = ::open(options.output_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        ::close(fd);
      }
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  return Subprocess(pid);
}

Subprocess::~Subprocess() {
  if (pid_ > 0 && Running()) {
    ::kill(-pid_, SIGKILL);  // its process group: what it started goes too
    ::kill(pid_, SIGKILL);   // in case it left its group
    ::waitpid(pid_, nullptr, 0);
  }
}

void Subprocess::Signal(int sig) const {
  if (pid_ > 0) ::kill(pid_, sig);
}

bool Subprocess::Running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) != pid_) return true;
  // Reaped here: keep the exit code for Wait().
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  pid_ = -1;
  return false;
}

std::optional<int> Subprocess::Wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return exit_code_;
  std::optional<int> code;
  WaitFor(
      [&] {
        int status = 0;
        const pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r != pid_) return false;
        code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        pid_ = -1;
        return true;
      },
      timeout);
  return code;
}

std::map<std::string, std::string> ProcStatus(pid_t pid) {
  std::map<std::string, std::string> fields;
  std::istringstream in(ReadFile("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(in, line);) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const auto value = line.find_first_not_of(" \t", colon + 1);
    fields[line.substr(0, colon)] = value == std::string::npos ? "" : line.substr(value);
  }
  return fields;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

long RssKib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

std::pair<int, std::string> RunCommand(const std::string& shell_command) {
  std::string out;
  FILE* p = ::popen((shell_command + " 2>&1").c_str(), "r");
  if (p == nullptr) return {-1, "popen failed"};
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

namespace {

// Socket inodes listening on `port` in /proc/net/tcp or tcp6 (state 0A is LISTEN).
std::vector<std::string> ListeningInodes(int port) {
  std::vector<std::string> inodes;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::istringstream rows(ReadFile(table));
    std::string row;
    std::getline(rows, row);  // header
    while (std::getline(rows, row)) {
      std::istringstream f(row);
      std::string sl, local, remote, state, queues, timer, retr, uid, timeout, inode;
      f >> sl >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >> inode;
      const auto colon = local.rfind(':');
      if (state != "0A" || colon == std::string::npos) continue;
      if (std::stoi(local.substr(colon + 1), nullptr, 16) == port) inodes.push_back(inode);
    }
  }
  return inodes;
}

int FreeTcpPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

}  // namespace

bool ListensOn(pid_t pid, int port) {
  const auto inodes = ListeningInodes(port);
  if (inodes.empty()) return false;
  std::error_code ec;
  for (const auto& fd :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    const std::string target = std::filesystem::read_symlink(fd.path(), ec).string();
    for (const auto& inode : inodes) {
      if (target == "socket:[" + inode + "]") return true;
    }
  }
  return false;
}

std::optional<Subprocess> StartOnFreePorts(size_t count, const ServerStarter& start,
                                           const std::string& log, std::vector<int>* ports) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    std::error_code ec;
    std::filesystem::remove(log, ec);  // judge this attempt by its own lines
    ports->clear();
    for (size_t i = 0; i < count; ++i) ports->push_back(FreeTcpPort());
    Subprocess p = start(*ports);
    auto all_listening = [&] {
      for (int port : *ports) {
        if (!ListensOn(p.pid(), port)) return false;
      }
      return true;
    };
    if (WaitFor([&] { return all_listening() || !p.Running(); }, std::chrono::seconds(30)) &&
        p.Running()) {
      return p;
    }
    const std::string text = ReadFile(log);
    if (text.find("ddress already in use") == std::string::npos) return std::nullopt;
    std::fprintf(stderr, "a port was taken before the server bound it; retrying: %s\n",
                 text.substr(text.rfind('\n', text.size() - 2) + 1).c_str());
  }
  return std::nullopt;
}

std::optional<std::string> HttpGet(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return std::nullopt;
  }
  const std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (::write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return std::nullopt;
  }
  std::string resp;
  char buf[8192];
  ssize_t n = 0;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) resp.append(buf, static_cast<size_t>(n));
  ::close(fd);
  const auto body = resp.find("\r\n\r\n");
  if (resp.rfind("HTTP/1.", 0) != 0 || body == std::string::npos) return std::nullopt;
  if (resp.compare(9, 3, "200") != 0) return std::nullopt;
  return resp.substr(body + 4);
}

TempDir::TempDir() {
  // The owner's pid in the name: the cleanup fixture removes it once that pid is gone.
  std::string tmpl = "/tmp/tunnelguard-test." + std::to_string(::getpid()) + ".XXXXXX";
  if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  ::chmod(path_.c_str(), 0755);
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!path_.empty()) std::filesystem::remove_all(path_, ec);
}

TestCgroup::TestCgroup(const std::string& name_prefix) {
  auto mount = FindCgroup2Mount();
  if (!mount.ok()) return;
  std::string p = *mount + "/" + name_prefix + "-" + std::to_string(::getpid());
  if (::mkdir(p.c_str(), 0755) == 0) path_ = p;
}

TestCgroup::~TestCgroup() {
  if (path_.empty()) return;
  for (int i = 0; i < 50; ++i) {
    std::ifstream procs(path_ + "/cgroup.procs");
    pid_t pid = 0;
    while (procs >> pid) ::kill(pid, SIGKILL);
    if (::rmdir(path_.c_str()) == 0 || errno == ENOENT) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace tg::testing
