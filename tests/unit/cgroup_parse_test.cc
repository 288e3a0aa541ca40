#include <gtest/gtest.h>

#include "agent/target/cgroup.h"

namespace tg {
namespace {

TEST(FindCgroup2Mount, FindsHybridMount) {
  const char* mounts =
      "tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0\n"
      "cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0\n"
      "cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n";
  auto m = FindCgroup2Mount(mounts);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(*m, "/sys/fs/cgroup/unified");
}

TEST(FindCgroup2Mount, FindsUnifiedMountAndUnescapes) {
  auto m = FindCgroup2Mount("none /sys/fs/my\\040cgroup cgroup2 rw 0 0\n");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(*m, "/sys/fs/my cgroup");
}

TEST(FindCgroup2Mount, NoneIsAnErrorWithTheFix) {
  auto m = FindCgroup2Mount("cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().kind, ErrorKind::kUnsupported);
  EXPECT_NE(m.error().message.find("mount -t cgroup2"), std::string::npos);
}

TEST(OpenUnitCgroup, RejectsNamesWithoutACgroupType) {
  auto cg = OpenUnitCgroup("cloudflared-tunnel.timer");
  ASSERT_FALSE(cg.ok());
  EXPECT_EQ(cg.error().kind, ErrorKind::kInvalidArgument);
}

}  // namespace
}  // namespace tg
