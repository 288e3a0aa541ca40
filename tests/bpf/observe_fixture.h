// The fixture of the host tests of the observe mechanism (this host refuses BPF-LSM): a target
// cgroup of its own under the cgroup2 mount and pins of its own, both named NAME-<pid>
// (target_, bpffs_). TearDown detaches every pin there and removes the cgroup.
#ifndef TUNNELGUARD_TESTS_BPF_OBSERVE_FIXTURE_H_
#define TUNNELGUARD_TESTS_BPF_OBSERVE_FIXTURE_H_

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <utility>

#include "agent/target/cgroup.h"
#include "agent/target/lsm_probe.h"
#include "cli_runner.h"
#include "test_support.h"

namespace tg::testing {

class ObserveTargetTest : public ::testing::Test {
 protected:
  explicit ObserveTargetTest(std::string name) : name_(std::move(name)) {}
  void SetUp() override {
    TG_REQUIRE_ROOT();
    TG_REQUIRE(!LsmProbe::Load(AF_UNIX).ok(), "this kernel has BPF-LSM: observe is not chosen");
    auto m = FindCgroup2Mount();
    ASSERT_TRUE(m.ok()) << m.error().message;
    cgroup2_ = *m;
    target_ = cgroup2_ + "/" + name_ + "-" + std::to_string(::getpid());
    bpffs_ = "/sys/fs/bpf/" + name_ + "-" + std::to_string(::getpid());
    ASSERT_EQ(::mkdir(target_.c_str(), 0755), 0) << target_;
  }
  void TearDown() override {
    if (!bpffs_.empty()) RunCli(TG_CLI_PATH, {"detach", "--all", "--bpffs-dir", bpffs_});
    if (!target_.empty()) ::rmdir(target_.c_str());
  }
  std::string cgroup2_, target_, bpffs_;

 private:
  std::string name_;
};

}  // namespace tg::testing

#endif  // TUNNELGUARD_TESTS_BPF_OBSERVE_FIXTURE_H_
