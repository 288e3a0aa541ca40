#include "agent/enforce/families.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <string>

#include "agent/enforce/unix_notify.h"
#include "bpf/policy_families.h"

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

TEST(UnixNotify, TokenSetsItsBitAndRoundTrips) {
  auto m = ParseFamilies("inet,inet6,unix-notify");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(*m, Bit(AF_INET) | Bit(AF_INET6) | (uint64_t{1} << TG_FAM_UNIX_NOTIFY_BIT));
  EXPECT_TRUE(UnixNotifyOn(*m));
  EXPECT_EQ(*m & Bit(AF_UNIX), 0u) << "unix-notify must not allow AF_UNIX outright";
  EXPECT_EQ(FormatFamilies(*m), "inet,inet6,unix-notify");
  auto again = ParseFamilies(FormatFamilies(*m));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *m);
  EXPECT_FALSE(UnixNotifyOn(Bit(AF_INET) | Bit(AF_INET6)));
  auto upper = ParseFamilies("UNIX-NOTIFY");
  ASSERT_TRUE(upper.ok());
  EXPECT_EQ(FormatFamilies(*upper), "unix-notify");
}

TEST(UnixNotify, WithUnixItIsAnError) {
  auto m = ParseFamilies("unix,unix-notify,inet");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_NE(m.error().message.find("give one of them"), std::string::npos) << m.error().message;
}

TEST(UnixNotify, UnknownNameListsTheToken) {
  auto m = ParseFamilies("unix_notify");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("unix-notify (AF_UNIX for sd_notify only)"), std::string::npos)
      << m.error().message;
}

TEST(UnixNotify, ReasonsHaveTheirOwnBoundedDetails) {
  EXPECT_EQ(FamilyToName(TG_FAM_UNIX_NOTIFY), "unix_notify");
  EXPECT_EQ(FamilyToName(TG_FAM_UNIX_PEER), "unix_peer");
  EXPECT_EQ(FamilyToName(TG_FAM_UNIX_PAIR), "unix_socketpair");
  EXPECT_EQ(FamilyToName(TG_FAM_OTHER), "af_63");
  for (const auto& r : UnixNotifyDetails()) {
    EXPECT_GE(r.family, 64) << r.name << " must not share a family's slot";
    EXPECT_LT(r.family, TG_FAM_SLOTS) << r.name;
  }
}

TEST(NotifySocket, PathAsTheKernelRecordsABoundPathSocket) {
  tg_unix_notify abi{};
  ASSERT_TRUE(NotifySocketToAbi("/run/systemd/notify", abi).ok());
  // sizeof(sa_family_t) + the path + its NUL: unix_mkname_bsd()'s length.
  EXPECT_EQ(abi.len, 2u + 19u + 1u);
  EXPECT_EQ(std::string(abi.path), "/run/systemd/notify");
  EXPECT_EQ(NotifySocketFromAbi(abi), "/run/systemd/notify");
}

TEST(NotifySocket, AbstractHasALeadingNulAndNoTerminator) {
  tg_unix_notify abi{};
  ASSERT_TRUE(NotifySocketToAbi("@tg-notify", abi).ok());
  EXPECT_EQ(abi.len, 2u + 1u + 9u);
  EXPECT_EQ(abi.path[0], '\0');
  EXPECT_EQ(std::string(abi.path + 1, 9), "tg-notify");
  EXPECT_EQ(NotifySocketFromAbi(abi), "@tg-notify");
}

TEST(NotifySocket, RejectsWhatCannotBeASocketAddress) {
  tg_unix_notify abi{};
  for (const char* bad : {"", "run/systemd/notify", "@", "/"}) {
    auto st = NotifySocketToAbi(bad, abi);
    EXPECT_FALSE(st.ok()) << "'" << bad << "'";
    if (!st.ok()) {
      EXPECT_EQ(st.error().kind, ErrorKind::kInvalidArgument);
    }
  }
  EXPECT_TRUE(NotifySocketToAbi("/" + std::string(TG_NOTIFY_PATH_MAX - 2, 'x'), abi).ok());
  EXPECT_EQ(abi.len, 2u + TG_NOTIFY_PATH_MAX);
  EXPECT_FALSE(NotifySocketToAbi("/" + std::string(TG_NOTIFY_PATH_MAX - 1, 'x'), abi).ok());
  EXPECT_FALSE(NotifySocketToAbi(std::string_view("/a\0b", 4), abi).ok());
  EXPECT_EQ(NotifySocketFromAbi(tg_unix_notify{}), "");
}

}  // namespace
}  // namespace tg
