// Persistence and adoption in a real BPF-LSM kernel: pinned links outlive the process that
// made them (kill -9 during and after attach), a new attach adopts them (the same link and
// program ids as the kernel lists them — our bpftool — and counters that continue), a changed
// allow-list is written in place with no gap, pins of removed cgroups are pruned, and detach
// removes every pin. A forbidden-attempt loop runs in the target throughout and must never
// succeed.
#include <bpf/bpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>

#include "agent/base/unique_fd.h"
#include "cli_runner.h"
#include "guest_ops.h"
#include "guest_support.h"
#include "test_support.h"

namespace tg::testing {
namespace {

bool Exists(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

// (link id, program id) of every cgroup link on `cgroup_id`, as the kernel lists them.
std::set<std::pair<uint32_t, uint32_t>> CgroupLinks(uint64_t cgroup_id) {
  std::set<std::pair<uint32_t, uint32_t>> out;
  uint32_t id = 0;
  while (bpf_link_get_next_id(id, &id) == 0) {
    UniqueFd fd(bpf_link_get_fd_by_id(id));
    if (!fd.valid()) continue;
    bpf_link_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) continue;
    if (info.type == BPF_LINK_TYPE_CGROUP && info.cgroup.cgroup_id == cgroup_id) {
      out.emplace(info.id, info.prog_id);
    }
  }
  return out;
}

uint64_t IdOf(const std::string& path) {
  struct stat st {};
  ::stat(path.c_str(), &st);
  return st.st_ino;
}

// A process in the target that keeps trying socket(AF_NETLINK) and a W+X mmap until stopped,
// and reports how many attempts succeeded and how many were made.
class ForbiddenLoop {
 public:
  explicit ForbiddenLoop(const std::string& cgroup) {
    int stop[2], result[2];
    if (::pipe(stop) != 0 || ::pipe(result) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(stop[1]);
      ::close(result[0]);
      const int fd = ::open((cgroup + "/cgroup.procs").c_str(), O_WRONLY);
      if (fd < 0 || ::write(fd, "0", 1) != 1) ::_exit(1);
      ::fcntl(stop[0], F_SETFL, O_NONBLOCK);
      uint64_t counts[2] = {0, 0};  // successes, attempts
      char c;
      while (::read(stop[0], &c, 1) < 0 && errno == EAGAIN) {
        const int s = ::socket(AF_NETLINK, SOCK_RAW, 0);
        if (s >= 0) {
          ++counts[0];
          ::close(s);
        }
        void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED) {
          ++counts[0];
          ::munmap(p, 4096);
        }
        counts[1] += 2;
      }
      ::_exit(::write(result[1], counts, sizeof(counts)) == sizeof(counts) ? 0 : 1);
    }
    ::close(stop[0]);
    ::close(result[1]);
    stop_ = stop[1];
    result_ = result[0];
  }
  // {successes, attempts}
  std::pair<uint64_t, uint64_t> Stop() {
    ::close(stop_);
    uint64_t counts[2] = {~0ull, 0};
    if (::read(result_, counts, sizeof(counts)) != sizeof(counts)) counts[0] = ~0ull;
    ::close(result_);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    return {counts[0], counts[1]};
  }

 private:
  pid_t pid_ = -1;
  int stop_ = -1;
  int result_ = -1;
};

uint64_t DenyCount(const std::string& policy) {
  const CliResult s = RunCli(TG_CLI_PATH, {"status", "--json"});
  const auto j = nlohmann::json::parse(s.out);
  for (const auto& p : j["targets"][0]["policies"]) {
    if (p["name"] == policy) return p["decisions"]["deny"].get<uint64_t>();
  }
  return 0;
}

TEST(Persistence, KillDuringAttachThenAttachRepairsWithoutDoubleAttach) {
  TG_REQUIRE_ROOT();
  const std::string& target = Cgroups().target;
  const uint64_t id = IdOf(target);
  for (int delay_ms : {0, 5, 10, 20, 40, 80, 160, 320}) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      const int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 1);
      ::dup2(null, 2);
      ::execl(TG_CLI_PATH, TG_CLI_PATH, "attach", "--cgroup", target.c_str(), nullptr);
      ::_exit(127);
    }
    ::usleep(static_cast<useconds_t>(delay_ms) * 1000);
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    const CliResult again = RunCli(TG_CLI_PATH, {"attach", "--cgroup", target});
    EXPECT_EQ(again.exit_code, 0) << "after kill at " << delay_ms << " ms: " << again.err;
    EXPECT_NE(again.out.find("canary passed"), std::string::npos) << again.out;
    // One link per hook: address_families 3 (socket_create, and unix-notify's unix_may_send and
    // socket_socketpair, idle while that mode is off), wx_memory 6 (mmap_file, file_mprotect,
    // shm_shmat, file_open, ptrace_access_check, ptrace_traceme).
    EXPECT_EQ(CgroupLinks(id).size(), 9u) << "after kill at " << delay_ms << " ms";
    ASSERT_EQ(RunCli(TG_CLI_PATH, {"detach", "--cgroup", target}).exit_code, 0);
    EXPECT_TRUE(CgroupLinks(id).empty());
    EXPECT_FALSE(Exists(kBpffsDir));
  }
}

TEST(Persistence, AdoptionKeepsLinksAndCountersAndAChangedListNeverLapses) {
  TG_REQUIRE_ROOT();
  const std::string& target = Cgroups().target;
  const uint64_t id = IdOf(target);
  ASSERT_EQ(RunCli(TG_CLI_PATH, {"attach", "--cgroup", target}).exit_code, 0);
  const auto links = CgroupLinks(id);
  ASSERT_EQ(links.size(), 9u);

  ForbiddenLoop loop(target);
  // A long-running holder of the objects (an `events` follower) killed with -9: the pins keep
  // everything attached.
  const pid_t follower = ::fork();
  if (follower == 0) {
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    ::execl(TG_CLI_PATH, TG_CLI_PATH, "events", "--cgroup", target.c_str(), nullptr);
    ::_exit(127);
  }
  ::usleep(300 * 1000);
  ::kill(follower, SIGKILL);
  ::waitpid(follower, nullptr, 0);
  EXPECT_EQ(CgroupLinks(id), links);
  const uint64_t denied_before = DenyCount("address_families");
  EXPECT_GT(denied_before, 0u);

  const auto t0 = std::chrono::steady_clock::now();
  const CliResult adopt = RunCli(TG_CLI_PATH, {"attach", "--cgroup", target});
  const auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0);
  EXPECT_EQ(adopt.exit_code, 0) << adopt.err;
  EXPECT_NE(adopt.out.find("address_families: adopted the pinned links"), std::string::npos)
      << adopt.out;
  EXPECT_NE(adopt.out.find("wx_memory: adopted the pinned links"), std::string::npos);
  std::printf("adoption (attach on pinned links, canary included): %.1f ms\n", ms.count());
  EXPECT_EQ(CgroupLinks(id), links) << "same links and programs: no second attach";
  EXPECT_GE(DenyCount("address_families"), denied_before) << "counters continue";

  // A changed allow-list: written in place into the pinned config.
  const CliResult change =
      RunCli(TG_CLI_PATH, {"attach", "--cgroup", target, "--families", "inet,inet6,unix"});
  EXPECT_EQ(change.exit_code, 0) << change.err;
  EXPECT_EQ(CgroupLinks(id), links) << "the list changed without detach or re-attach";
  EXPECT_EQ(RunInChild(In(target), [] { return OpSocket(AF_UNIX, SOCK_DGRAM, 0); }), 0);
  EXPECT_EQ(RunInChild(In(target), [] { return OpSocket(AF_NETLINK, SOCK_RAW, 0); }), EAFNOSUPPORT);

  const auto [successes, attempts] = loop.Stop();
  EXPECT_EQ(successes, 0u) << "a forbidden act succeeded while the agent came and went";
  EXPECT_GT(attempts, 0u);
  std::printf("forbidden-attempt loop: %llu attempts, %llu succeeded\n",
              static_cast<unsigned long long>(attempts),
              static_cast<unsigned long long>(successes));

  ASSERT_EQ(RunCli(TG_CLI_PATH, {"detach", "--cgroup", target}).exit_code, 0);
  EXPECT_TRUE(CgroupLinks(id).empty());
  EXPECT_FALSE(Exists(kBpffsDir)) << "detach removes every pin";
}

TEST(Persistence, PinsOfARemovedCgroupAreStaleAndPruned) {
  TG_REQUIRE_ROOT();
  const std::string doomed = Cgroups().mount + "/tg-doomed2";
  ASSERT_EQ(::mkdir(doomed.c_str(), 0755), 0);
  const uint64_t doomed_id = IdOf(doomed);
  ASSERT_EQ(RunCli(TG_CLI_PATH, {"attach", "--cgroup", doomed}).exit_code, 0);
  ASSERT_EQ(::rmdir(doomed.c_str()), 0);
  bool stale = false;
  for (int i = 0; i < 50 && !stale; ++i) {
    const auto j = nlohmann::json::parse(RunCli(TG_CLI_PATH, {"status", "--json"}).out);
    stale = j["targets"][0]["stale"] == true;
    if (!stale) ::usleep(100 * 1000);
  }
  EXPECT_TRUE(stale);
  ASSERT_EQ(RunCli(TG_CLI_PATH, {"attach", "--cgroup", Cgroups().target}).exit_code, 0);
  EXPECT_FALSE(Exists(std::string(kBpffsDir) + "/" + std::to_string(doomed_id)))
      << "attach prunes pin dirs of removed cgroups";
  ASSERT_EQ(RunCli(TG_CLI_PATH, {"detach", "--all"}).exit_code, 0);
  EXPECT_FALSE(Exists(kBpffsDir));
}

}  // namespace
}  // namespace tg::testing
