// The shared JSON schema (docs/json-schema.md): every documented field, with values derived
// from the snapshot, so the daemon and `measure --json` cannot drift apart unnoticed.
#include "agent/latency/latency_json.h"

#include <gtest/gtest.h>

#include "bpf/latency.h"

namespace tg {
namespace {

FineHistogram Hist(std::initializer_list<uint64_t> values) {
  FineHistogram h;
  for (const uint64_t v : values) h.Record(v);
  return h;
}

TEST(LatencyJson, HasEveryDocumentedField) {
  UpstreamStats u;
  u.name = "web";
  u.addresses = {"127.0.0.1:80", "[::1]:80"};
  u.requests = 3;
  u.connections = 2;
  u.connections_adopted = 1;
  u.connections_closed = 1;
  u.connect_attempts = 3;
  u.refused = 1;
  u.timeout = 2;
  u.reset = 3;
  u.aborted = 4;
  u.bytes_sent = 100;
  u.bytes_received = 200;
  u.retransmits = 5;
  u.tls_handshake_turns = 6;
  u.request_latency = Hist({900'000, 2'000'000, 50'000'000});
  u.connect_latency = Hist({20'000, 30'000});
  const auto j = LatencyToJson(LatencySnapshot{{u}});

  EXPECT_EQ(j["schema_version"], 1);
  const auto& x = j["upstreams"].at(0);
  EXPECT_EQ(x["name"], "web");
  EXPECT_EQ(x["address"], "127.0.0.1:80,[::1]:80");
  EXPECT_EQ(x["addresses"].size(), 2u);
  EXPECT_EQ(x["requests"], 3);
  EXPECT_EQ(x["connections"], 2);
  EXPECT_EQ(x["connections_adopted"], 1);
  EXPECT_EQ(x["connections_closed"], 1);
  EXPECT_EQ(x["connect_attempts"], 3);
  EXPECT_EQ(x["open_connections"], 2);  // 2 opened + 1 adopted - 1 closed
  const auto& r = x["request_latency_seconds"];
  EXPECT_EQ(r["count"], 3);
  EXPECT_NEAR(r["sum"].get<double>(), 0.0529, 1e-9);
  EXPECT_NEAR(r["p50"].get<double>(), 0.002, 0.002 * 0.03);
  EXPECT_NEAR(r["p90"].get<double>(), 0.050, 0.050 * 0.03);
  EXPECT_NEAR(r["p99"].get<double>(), 0.050, 0.050 * 0.03);
  EXPECT_DOUBLE_EQ(r["max"].get<double>(), 0.050);
  ASSERT_EQ(r["buckets"].size(), 16u);
  EXPECT_DOUBLE_EQ(r["buckets"][0]["le"].get<double>(), 0.0001);
  EXPECT_EQ(r["buckets"][3]["count"], 1);   // le=1 ms: the 0.9 ms sample
  EXPECT_EQ(r["buckets"][4]["count"], 2);   // le=2.5 ms: and the 2 ms one
  EXPECT_EQ(r["buckets"][15]["count"], 3);  // le=10 s
  const auto& c = x["connect_latency_seconds"];
  EXPECT_EQ(c["count"], 2);
  EXPECT_TRUE(c.contains("p50"));
  EXPECT_TRUE(c.contains("p99"));
  EXPECT_EQ(x["failures"]["refused"], 1);
  EXPECT_EQ(x["failures"]["timeout"], 2);
  EXPECT_EQ(x["failures"]["reset"], 3);
  EXPECT_EQ(x["failures"]["aborted"], 4);
  EXPECT_EQ(x["bytes"]["sent"], 100);
  EXPECT_EQ(x["bytes"]["received"], 200);
  EXPECT_EQ(x["retransmits"], 5);
  EXPECT_EQ(x["tls_handshake_turns"], 6);
}

TEST(LatencyJson, EmptyHistogramsGiveZeroQuantiles) {
  UpstreamStats u;
  u.name = "websecure";
  const auto j = LatencyToJson(LatencySnapshot{{u}});
  const auto& r = j["upstreams"][0]["request_latency_seconds"];
  EXPECT_EQ(r["p50"], 0.0);
  EXPECT_EQ(r["max"], 0.0);
  EXPECT_EQ(r["buckets"][15]["count"], 0);
}

}  // namespace
}  // namespace tg
