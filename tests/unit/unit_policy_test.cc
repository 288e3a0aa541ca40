#include "agent/enforce/unit_policy.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include "agent/enforce/families.h"

namespace tg {
namespace {

constexpr uint64_t Bit(int family) { return uint64_t{1} << family; }

TEST(PolicyFromDirectives, AllowListAndMdweAsCloudflaredSetsThem) {
  auto p =
      PolicyFromDirectives("cloudflared-tunnel.service", {true, {"AF_INET", "AF_INET6"}}, true);
  ASSERT_TRUE(p.ok()) << p.error().message;
  ASSERT_TRUE(p->allowed_families.has_value());
  EXPECT_EQ(*p->allowed_families, Bit(AF_INET) | Bit(AF_INET6));
  EXPECT_TRUE(p->wx_memory);
  EXPECT_EQ(p->summary, "RestrictAddressFamilies=AF_INET AF_INET6, MemoryDenyWriteExecute=yes");
}

TEST(PolicyFromDirectives, DenyListBecomesEveryOtherKnownFamily) {
  auto p = PolicyFromDirectives("x.service", {false, {"AF_PACKET"}}, false);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(*p->allowed_families & Bit(AF_PACKET), 0u);
  EXPECT_NE(*p->allowed_families & Bit(AF_UNIX), 0u);
  EXPECT_NE(*p->allowed_families & Bit(AF_INET), 0u);
  EXPECT_FALSE(p->wx_memory);
  EXPECT_EQ(p->summary, "RestrictAddressFamilies=~AF_PACKET, MemoryDenyWriteExecute=no");
}

TEST(PolicyFromDirectives, NoneAllowsNoFamily) {
  auto p = PolicyFromDirectives("x.service", {true, {}}, false);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p->allowed_families, 0u);
}

TEST(PolicyFromDirectives, OnlyMdweLeavesFamiliesAlone) {
  auto p = PolicyFromDirectives("x.service", {false, {}}, true);
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->allowed_families.has_value());
  EXPECT_TRUE(p->wx_memory);
}

TEST(PolicyFromDirectives, NeitherSetIsAnErrorNamingTheFlags) {
  auto p = PolicyFromDirectives("x.service", {false, {}}, false);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("--families/--wx-memory"), std::string::npos);
}

}  // namespace
}  // namespace tg
