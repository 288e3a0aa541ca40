#include "agent/enforce/unit_policy.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include "agent/enforce/families.h"
#include "bpf/policy_families.h"

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

TEST(PolicyFromDirectives, NotifyUnitGetsAfUnixForSdNotifyOnly) {
  const SystemdUnit::AddressFamilies families{true, {"AF_UNIX", "AF_INET", "AF_INET6"}};
  for (const char* type : {"notify", "notify-reload"}) {
    auto p = PolicyFromDirectives("cloudflared.service", families, true, type);
    ASSERT_TRUE(p.ok()) << p.error().message;
    EXPECT_EQ(*p->allowed_families,
              Bit(AF_INET) | Bit(AF_INET6) | (uint64_t{1} << TG_FAM_UNIX_NOTIFY_BIT));
    EXPECT_TRUE(UnixNotifyOn(*p->allowed_families));
    EXPECT_EQ(FormatFamilies(*p->allowed_families), "inet,inet6,unix-notify");
    EXPECT_NE(p->summary.find(std::string("Type=") + type +
                              ": AF_UNIX narrowed to sd_notify (unix-notify)"),
              std::string::npos)
        << p->summary;
  }
}

TEST(PolicyFromDirectives, OtherTypesAndListsKeepAfUnixAsTheUnitSays) {
  const SystemdUnit::AddressFamilies with_unix{true, {"AF_UNIX", "AF_INET"}};
  auto simple = PolicyFromDirectives("x.service", with_unix, false, "simple");
  ASSERT_TRUE(simple.ok());
  EXPECT_EQ(*simple->allowed_families, Bit(AF_UNIX) | Bit(AF_INET));
  // A deny-list is permissive by design: nothing to narrow.
  auto deny = PolicyFromDirectives("x.service", {false, {"AF_PACKET"}}, false, "notify");
  ASSERT_TRUE(deny.ok());
  EXPECT_NE(*deny->allowed_families & Bit(AF_UNIX), 0u);
  EXPECT_FALSE(UnixNotifyOn(*deny->allowed_families));
  // Without AF_UNIX in the list the unit cannot notify under systemd's own filter anyway.
  auto inet = PolicyFromDirectives("x.service", {true, {"AF_INET"}}, false, "notify");
  ASSERT_TRUE(inet.ok());
  EXPECT_EQ(*inet->allowed_families, Bit(AF_INET));
}

}  // namespace
}  // namespace tg
