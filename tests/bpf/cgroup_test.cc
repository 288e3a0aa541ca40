// Real cgroups on this host: resolution, ids and the errors users see.
#include "agent/target/cgroup.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_support.h"

namespace tg {
namespace {

class CgroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TG_REQUIRE_ROOT();
    auto m = FindCgroup2Mount();
    ASSERT_TRUE(m.ok()) << m.error().message;
    mount_ = *m;
    dir_ = mount_ + "/tg-test-" + std::to_string(::getpid());
    ASSERT_EQ(::mkdir(dir_.c_str(), 0755), 0) << dir_;
  }
  void TearDown() override {
    if (!dir_.empty()) ::rmdir(dir_.c_str());
  }
  std::string mount_, dir_;
};

TEST_F(CgroupTest, OpensAbsoluteAndRelativePathsToTheSameId) {
  auto abs = OpenCgroup(dir_);
  ASSERT_TRUE(abs.ok()) << abs.error().message;
  auto rel = OpenCgroup(dir_.substr(mount_.size()));
  ASSERT_TRUE(rel.ok()) << rel.error().message;
  EXPECT_EQ(abs->id, rel->id);
  EXPECT_EQ(abs->relative, dir_.substr(mount_.size()));
  struct stat st {};
  ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(abs->id, st.st_ino);  // cgroup id == kernfs inode number
}

TEST_F(CgroupTest, MissingCgroupNamesTheMount) {
  auto cg = OpenCgroup("/no-such-tunnelguard-cgroup");
  ASSERT_FALSE(cg.ok());
  EXPECT_EQ(cg.error().kind, ErrorKind::kNotFound);
  EXPECT_NE(cg.error().message.find(mount_), std::string::npos) << cg.error().message;
}

TEST_F(CgroupTest, NonCgroupDirectoryIsRejected) {
  auto cg = OpenCgroup("/tmp");
  ASSERT_FALSE(cg.ok());
  EXPECT_EQ(cg.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_NE(cg.error().message.find("not a cgroup"), std::string::npos);
}

TEST_F(CgroupTest, CgroupV1PathIsRejectedWithTheFix) {
  struct stat st {};
  TG_REQUIRE(::stat("/sys/fs/cgroup/pids", &st) == 0, "no cgroup v1 hierarchy on this host");
  auto cg = OpenCgroup("/sys/fs/cgroup/pids");
  ASSERT_FALSE(cg.ok());
  EXPECT_NE(cg.error().message.find("cgroup v1"), std::string::npos) << cg.error().message;
}

}  // namespace
}  // namespace tg
