// --upstream parsing: what users type, and the one-line errors they get.
#include "agent/latency/upstreams.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include "subprocess.h"

namespace tg {
namespace {

TEST(Upstreams, DefaultListHasWebAndWebsecureOnBothLoopbacks) {
  auto ups = ParseUpstreams(kDefaultUpstreams);
  ASSERT_TRUE(ups.ok()) << ups.error().message;
  ASSERT_EQ(ups->size(), 2u);
  EXPECT_EQ((*ups)[0].name, "web");
  EXPECT_EQ((*ups)[1].name, "websecure");
  EXPECT_EQ(JoinAddresses((*ups)[0]), "127.0.0.1:80,[::1]:80");
  EXPECT_EQ(JoinAddresses((*ups)[1]), "127.0.0.1:443,[::1]:443");
  const auto& v4 = (*ups)[0].addresses[0];
  EXPECT_EQ(v4.family, AF_INET);
  EXPECT_EQ(v4.port, 80);
  EXPECT_EQ(v4.addr[0], 127);
  EXPECT_EQ(v4.addr[3], 1);
  const auto& v6 = (*ups)[1].addresses[1];
  EXPECT_EQ(v6.family, AF_INET6);
  EXPECT_EQ(v6.addr[15], 1);
  EXPECT_EQ(v6.port, 443);
}

// What latency measures apart: every address on its own, named, in the configured order.
TEST(Upstreams, PerAddressSplitsEachNameIntoItsAddresses) {
  auto ups = ParseUpstreams(kDefaultUpstreams);
  ASSERT_TRUE(ups.ok());
  const auto split = PerAddress(*ups);
  ASSERT_EQ(split.size(), 4u);
  const std::pair<const char*, const char*> want[] = {{"web", "127.0.0.1:80"},
                                                      {"web", "[::1]:80"},
                                                      {"websecure", "127.0.0.1:443"},
                                                      {"websecure", "[::1]:443"}};
  for (size_t i = 0; i < split.size(); ++i) {
    EXPECT_EQ(split[i].name, want[i].first);
    ASSERT_EQ(split[i].addresses.size(), 1u);
    EXPECT_EQ(split[i].addresses[0].text, want[i].second);
  }
}

void ExpectError(const char* list, const char* fragment) {
  auto ups = ParseUpstreams(list);
  ASSERT_FALSE(ups.ok()) << list;
  EXPECT_EQ(ups.error().kind, ErrorKind::kInvalidArgument);
  const std::string& m = ups.error().message;
  EXPECT_NE(m.find(fragment), std::string::npos) << m;
  EXPECT_NE(m.find("e.g. --upstream web=127.0.0.1:80"), std::string::npos) << m;  // the fix
  EXPECT_EQ(m.find('\n'), std::string::npos) << "one line: " << m;
}

TEST(Upstreams, ErrorsNameTheItemAndTheFix) {
  ExpectError("web=127.0.0.1", "'web=127.0.0.1': missing ':port'");
  ExpectError("127.0.0.1:80", "missing 'name='");
  ExpectError("web=localhost:80", "not a numeric IPv4 or IPv6 address");
  ExpectError("web=127.0.0.1:0", "not a number in 1..65535");
  ExpectError("web=127.0.0.1:99999", "not a number in 1..65535");
  ExpectError("web=::1:80", "needs brackets");
  ExpectError("web=[::1:80", "missing ']'");
  ExpectError("we b=127.0.0.1:80", "the name may use only");
  ExpectError("web=127.0.0.1:80,,x=127.0.0.1:81", "empty item");
  ExpectError("web=127.0.0.1:80,api=127.0.0.1:80", "already listed for 'web'");
}

TEST(Upstreams, TooManyNamesIsAnError) {
  std::string list;
  for (int i = 0; i < 65; ++i) {
    list += (i ? "," : "") + std::string("u") + std::to_string(i) +
            "=127.0.0.1:" + std::to_string(1000 + i);
  }
  auto ups = ParseUpstreams(list);
  ASSERT_FALSE(ups.ok());
  EXPECT_NE(ups.error().message.find("more than 64 upstream names"), std::string::npos);
}

TEST(MeasureCommand, BadUpstreamIsOneLineNamingTheProblemAndTheFix) {
  const auto [rc, out] = testing::RunCommand(std::string(TG_BINARY) +
                                             " measure --cgroup / --upstream web=127.0.0.1 2>&1");
  EXPECT_EQ(rc, 2) << out;  // usage error
  EXPECT_EQ(out,
            "tunnelguard: --upstream 'web=127.0.0.1': missing ':port' (expected "
            "name=addr:port[,name=addr:port...], e.g. --upstream "
            "web=127.0.0.1:80,websecure=[::1]:443)\n");
}

}  // namespace
}  // namespace tg
