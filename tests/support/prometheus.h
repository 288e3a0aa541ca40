// A real Prometheus for tests: Debian's server scraping one target every second, in a temp
// dir, on a port it was seen listening on, gone with the object; and instant queries through its
// HTTP API.
#ifndef TUNNELGUARD_TESTS_SUPPORT_PROMETHEUS_H_
#define TUNNELGUARD_TESTS_SUPPORT_PROMETHEUS_H_

#include <optional>
#include <string>
#include <vector>

#include "subprocess.h"

namespace tg::testing {

class TestPrometheus {
 public:
  // Scrapes 127.0.0.1:target_port as job "tunnelguard"; files live under `dir`. Rule files
  // (e.g. deploy/prometheus/tunnelguard.rules.yml) are evaluated every second.
  // `native_histograms`: started with --enable-feature=native-histograms, so it asks for the
  // protobuf exposition and stores native histograms (no `_bucket`/`_count`/`_sum` series).
  TestPrometheus(const std::string& dir, int target_port,
                 const std::vector<std::string>& rule_files = {}, bool native_histograms = false);
  // The raw JSON answer of /api/v1/query for a PromQL expression ("" when unreachable).
  std::string Query(const std::string& promql) const;
  // The same, evaluated at `unix_seconds` (several queries then see the same instant).
  std::string QueryAt(const std::string& promql, double unix_seconds) const;
  // The raw JSON answer of GET `path` (e.g. "/api/v1/rules"; "" when unreachable).
  std::string Get(const std::string& path) const;
  int port() const { return port_; }
  // False when Prometheus did not come up (its log, DIR/prometheus.log, says why).
  bool ok() const { return server_.has_value(); }

 private:
  int port_ = 0;
  std::optional<Subprocess> server_;
};

// Percent-encodes a query-string value.
std::string UrlEncode(const std::string& s);

}  // namespace tg::testing

#endif  // TUNNELGUARD_TESTS_SUPPORT_PROMETHEUS_H_
