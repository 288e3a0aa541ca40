#include <gtest/gtest.h>

#include "agent/target/kernel_features.h"

namespace tg {
namespace {

TEST(ParseLsmList, SplitsSecurityfsText) {
  EXPECT_EQ(ParseLsmList("lockdown,capability,landlock,bpf\n"),
            (std::vector<std::string>{"lockdown", "capability", "landlock", "bpf"}));
  EXPECT_TRUE(ParseLsmList("").empty());
  EXPECT_EQ(ParseLsmList("capability"), (std::vector<std::string>{"capability"}));
}

}  // namespace
}  // namespace tg
