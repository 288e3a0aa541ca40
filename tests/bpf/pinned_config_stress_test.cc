// One owner of a policy's pinned config (agent/enforce/pinned_config.h), under load on this
// host's kernel (observe mechanism: the config map is the same for every mechanism): 10,000
// mode switches interleaved with real canaries, a tight loop of canary-state writes and, for
// the first half, concurrent `tunnelguard attach` runs in other processes. No switch may be
// lost: before each switch of the second half (when the switcher is the only one writing the
// mode) the pinned mode is the one it set last, and at the end it is the last one set.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "agent/enforce/canary.h"
#include "agent/enforce/pin_layout.h"
#include "agent/enforce/pinned_config.h"
#include "agent/enforce/policy_control.h"
#include "agent/target/cgroup.h"
#include "agent/target/lsm_probe.h"
#include "cli_runner.h"
#include "observe_fixture.h"
#include "test_support.h"

namespace tg {
namespace {

using ::tg::testing::CliResult;
using ::tg::testing::RunCli;

constexpr int kSwitches = 10000;
constexpr PolicyKind kKind = PolicyKind::kAddressFamilies;

class PinnedConfigStressTest : public testing::ObserveTargetTest {
 protected:
  PinnedConfigStressTest() : ObserveTargetTest("tg-pinned-stress") {}
  CliResult Attach() {
    return RunCli(TG_CLI_PATH, {"attach", "--cgroup", target_, "--mode", "audit", "--mechanism",
                                "observe", "--bpffs-dir", bpffs_});
  }
};

TEST_F(PinnedConfigStressTest, NoModeSwitchIsLostToCanariesOrConcurrentAttach) {
  const CliResult first = Attach();
  ASSERT_EQ(first.exit_code, 0) << first.err;
  auto cg = OpenCgroup(target_);
  ASSERT_TRUE(cg.ok()) << cg.error().message;
  const std::string dir = PolicyDir(bpffs_, cg->id, kKind);

  std::atomic<bool> stop_attach{false}, stop{false};
  std::atomic<int> attaches{0}, attach_failures{0}, canaries{0}, canary_errors{0}, writes{0};
  std::string attach_error;
  std::thread attacher([&] {
    while (!stop_attach) {
      const CliResult r = Attach();
      ++attaches;
      // The switcher's enforce is one observe cannot keep: a canary that says so is right.
      const bool verdict = r.err.find("canary failed") != std::string::npos;
      if (r.exit_code != 0 && !verdict && attach_failures++ == 0) attach_error = r.err;
    }
  });
  std::thread canary([&] {
    while (!stop) {
      canary_errors += RunCanary(bpffs_, *cg).ok() ? 0 : 1;
      ++canaries;
    }
  });
  std::thread canary_writes([&] {  // the canary's write path, without the canary's pace
    for (uint64_t n = 1; !stop; ++n) {
      auto w = ChangePinnedConfig(dir, kKind, [n](PinnedConfig& c) { c.canary().last_run_ns = n; });
      writes += w.ok() ? 1 : 0;
    }
  });

  int lost = 0, errors = 0;
  Mode last = Mode::kAudit;
  for (int i = 0; i < kSwitches; ++i) {
    if (i == kSwitches / 2) {  // from here on the switcher alone writes the mode
      stop_attach = true;
      attacher.join();
      ASSERT_EQ(SetMode(bpffs_, cg->id, kKind, last).ok(), true);
    }
    if (i > kSwitches / 2) {
      auto now = ReadPinnedConfig(dir, kKind);
      if (!now.ok() || now->mode() != ModeToAbi(last)) ++lost;
    }
    last = i % 2 == 0 ? Mode::kEnforce : Mode::kAudit;
    errors += SetMode(bpffs_, cg->id, kKind, last).ok() ? 0 : 1;
  }
  stop = true;
  canary.join();
  canary_writes.join();
  auto final_config = ReadPinnedConfig(dir, kKind);
  ASSERT_TRUE(final_config.ok()) << final_config.error().message;
  EXPECT_EQ(final_config->mode(), ModeToAbi(last));
  EXPECT_EQ(lost, 0) << "mode switches found reverted before the next one";
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(attach_failures, 0) << attach_error;
  EXPECT_GT(attaches, 0);
  EXPECT_GT(canaries, 0);
  EXPECT_EQ(canary_errors, 0);
  std::printf(
      "%d switches, %d concurrent attach runs, %d canaries (%d errors), %d canary-state "
      "writes, %d switches lost\n",
      kSwitches, attaches.load(), canaries.load(), canary_errors.load(), writes.load(), lost);
}

}  // namespace
}  // namespace tg
