#include "agent/enforce/families.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

namespace tg {
namespace {

uint64_t Bit(int family) { return uint64_t{1} << family; }

TEST(ParseFamilies, SystemdDefaultsForTheTunnel) {
  auto m = ParseFamilies("inet,inet6");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(*m, Bit(AF_INET) | Bit(AF_INET6));
}

TEST(ParseFamilies, AcceptsSystemdSpellingsAndAliases) {
  auto m = ParseFamilies(" AF_UNIX, af_netlink ,Packet,local,route");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(*m, Bit(AF_UNIX) | Bit(AF_NETLINK) | Bit(AF_PACKET));
}

TEST(ParseFamilies, EveryKnownFamilyMatchesTheSystemHeaders) {
  const std::pair<const char*, int> expected[] = {
      {"unix", AF_UNIX},
      {"inet", AF_INET},
      {"inet6", AF_INET6},
      {"netlink", AF_NETLINK},
      {"packet", AF_PACKET},
      {"vsock", AF_VSOCK},
      {"alg", AF_ALG},
      {"xdp", AF_XDP},
      {"bluetooth", AF_BLUETOOTH},
      {"can", AF_CAN},
      {"tipc", AF_TIPC},
      {"key", AF_KEY},
      {"rds", AF_RDS},
      {"kcm", AF_KCM},
      {"smc", AF_SMC},
      {"qipcrtr", AF_QIPCRTR},
      {"ieee802154", AF_IEEE802154},
  };
  for (const auto& [name, family] : expected) {
    auto m = ParseFamilies(name);
    ASSERT_TRUE(m.ok()) << name;
    EXPECT_EQ(*m, Bit(family)) << name;
    EXPECT_EQ(FamilyToName(family), name);
  }
  EXPECT_EQ(KnownFamilies().size(), 45u);
}

TEST(ParseFamilies, NoneIsTheEmptyList) {
  auto m = ParseFamilies("none");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(*m, 0u);
  EXPECT_EQ(FormatFamilies(0), "none");
}

TEST(ParseFamilies, UnknownNameListsTheValidOnes) {
  auto m = ParseFamilies("inet,ipv4");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(
      m.error().message.rfind("unknown address family 'ipv4'; valid families: unix, inet, ", 0), 0u)
      << m.error().message;
  for (const auto& f : KnownFamilies()) {
    EXPECT_NE(m.error().message.find(std::string(f.name)), std::string::npos) << f.name;
  }
}

TEST(ParseFamilies, EmptyListsAndElementsAreErrors) {
  EXPECT_FALSE(ParseFamilies("").ok());
  EXPECT_FALSE(ParseFamilies("  ").ok());
  auto m = ParseFamilies("inet,,inet6");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("empty family name"), std::string::npos);
  EXPECT_FALSE(ParseFamilies("inet,").ok());
}

TEST(FormatFamilies, RoundTrips) {
  auto m = ParseFamilies("vsock,inet6,unix");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(FormatFamilies(*m), "unix,inet6,vsock");
  EXPECT_EQ(FamilyToName(62), "af_62");
}

}  // namespace
}  // namespace tg
