#include <gtest/gtest.h>

#include "exporter/metrics_server.h"

namespace tg::exporter {
namespace {

TEST(ParseListenAddress, AcceptsV4AndBracketedV6) {
  auto a = ParseListenAddress("127.0.0.1:9612");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->first, "127.0.0.1");
  EXPECT_EQ(a->second, 9612);
  auto b = ParseListenAddress("[::1]:0");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->first, "[::1]");
  EXPECT_EQ(b->second, 0);
}

TEST(ParseListenAddress, RejectsWithTheExpectedForm) {
  for (const char* bad : {"9612", "localhost:9612", "127.0.0.1:", "127.0.0.1:99999", "::1:9612",
                          "127.0.0.1:9x", "[::1:9612"}) {
    auto r = ParseListenAddress(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("use ADDR:PORT"), std::string::npos) << bad;
  }
}

TEST(MetricsServer, BusyPortIsAClearError) {
  auto first = MetricsServer::Start("127.0.0.1:0");
  ASSERT_TRUE(first.ok()) << first.error().message;
  const std::string addr = "127.0.0.1:" + std::to_string((*first)->port());
  auto second = MetricsServer::Start(addr);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find("--metrics-listen"), std::string::npos)
      << second.error().message;
}

}  // namespace
}  // namespace tg::exporter
