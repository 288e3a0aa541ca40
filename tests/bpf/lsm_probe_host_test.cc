// The feature probe against this host's real kernel: whatever the kernel answers, the probe
// must agree with a direct load attempt and say it in the documented words.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include "agent/target/kernel_features.h"
#include "agent/target/lsm_probe.h"
#include "test_support.h"

namespace tg {
namespace {

TEST(LsmProbeHost, ReportsTheKernelsAnswerPlainly) {
  TG_REQUIRE_ROOT();
  auto probe = LsmProbe::Load(AF_UNIX);
  const KernelFeatures f = ProbeKernelFeatures();
  EXPECT_EQ(f.lsm_cgroup.available, probe.ok());
  if (!probe.ok()) {
    EXPECT_EQ(probe.error().kind, ErrorKind::kUnsupported);
    EXPECT_EQ(probe.error().message.rfind("kernel refused lsm_cgroup program: E", 0), 0u)
        << probe.error().message;
    EXPECT_EQ(f.lsm_cgroup.detail, probe.error().message);
  }
  EXPECT_TRUE(f.bpffs.available) << f.bpffs.detail;
  EXPECT_FALSE(f.cgroup2_mount.empty());
}

}  // namespace
}  // namespace tg
