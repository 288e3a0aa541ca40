// The /metrics server: its address parsing, what it answers, and what one client may cost it.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "agent/base/unique_fd.h"
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

UniqueFd Connect(int port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) fd.reset();
  return fd;
}

// Sends `request` and reads until the server closes (5 s at most): the raw response.
std::string Exchange(int port, const std::string& request) {
  UniqueFd fd = Connect(port);
  if (!fd.valid()) return "";
  timeval tv{5, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) < 0) return "";
  std::string out;
  char buf[4096];
  ssize_t n = 0;
  while ((n = ::recv(fd.get(), buf, sizeof(buf), 0)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

class MetricsServing : public ::testing::Test {
 protected:
  void Start(const MetricsServerLimits& limits) {
    auto s = MetricsServer::Start("127.0.0.1:0", limits);
    ASSERT_TRUE(s.ok()) << s.error().message;
    server_ = std::move(*s);
    prometheus::BuildCounter()
        .Name("tg_test_total")
        .Help("a test counter")
        .Register(*registry_)
        .Add({{"k", "v"}})
        .Increment(3);
    server_->Register(registry_);
  }
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  std::unique_ptr<MetricsServer> server_;
};

TEST_F(MetricsServing, AnswersGetMetricsAndNothingElse) {
  Start({});
  const std::string ok = Exchange(server_->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(ok.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << ok;
  EXPECT_NE(ok.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << ok;
  EXPECT_NE(ok.find("tg_test_total{k=\"v\"} 3"), std::string::npos) << ok;
  const std::string query = Exchange(server_->port(), "GET /metrics?x=1 HTTP/1.0\r\n\r\n");
  EXPECT_EQ(query.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << query;
  EXPECT_EQ(Exchange(server_->port(), "GET / HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(Exchange(server_->port(), "POST /metrics HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 405", 0),
            0u);
  EXPECT_EQ(Exchange(server_->port(), "garbage\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  EXPECT_EQ(Exchange(server_->port(), "GET /metrics HTTP/1.1\r\nX: " + std::string(9000, 'a'))
                .rfind("HTTP/1.1 431", 0),
            0u);
}

// A trickle does not extend the request deadline: the connection is closed when it passes.
TEST_F(MetricsServing, ATricklingRequestIsClosedAtItsDeadline) {
  MetricsServerLimits limits;
  limits.request_deadline = std::chrono::milliseconds(300);
  Start(limits);
  UniqueFd fd = Connect(server_->port());
  ASSERT_TRUE(fd.valid());
  const auto t0 = std::chrono::steady_clock::now();
  bool closed = false;
  for (int i = 0; i < 100 && !closed; ++i) {  // a byte every 50 ms, for up to 5 s
    if (::send(fd.get(), "G", 1, MSG_NOSIGNAL) != 1) break;
    pollfd p{fd.get(), POLLIN, 0};
    char c = 0;
    closed = ::poll(&p, 1, 50) == 1 && ::recv(fd.get(), &c, 1, 0) <= 0;
  }
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_TRUE(closed) << "a trickling connection was kept open for 5 s";
  EXPECT_GE(waited, std::chrono::milliseconds(300));
}

// More connections than the cap: the oldest are closed, so a scrape is always served.
TEST_F(MetricsServing, ConnectionsOverTheCapCloseTheOldest) {
  MetricsServerLimits limits;
  limits.max_connections = 4;
  Start(limits);
  std::vector<UniqueFd> idle;
  for (int i = 0; i < 20; ++i) {
    idle.push_back(Connect(server_->port()));
    ASSERT_TRUE(idle.back().valid());
  }
  const std::string ok = Exchange(server_->port(), "GET /metrics HTTP/1.1\r\n\r\n");
  EXPECT_EQ(ok.rfind("HTTP/1.1 200 OK", 0), 0u) << ok;
  // The first idle connection was closed by the server (the next read sees the end).
  pollfd p{idle.front().get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  char c = 0;
  EXPECT_LE(::recv(idle.front().get(), &c, 1, 0), 0);
}

}  // namespace
}  // namespace tg::exporter
