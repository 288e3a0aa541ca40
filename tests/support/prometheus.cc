#include "prometheus.h"

#include <cctype>
#include <cstdio>
#include <fstream>

namespace tg::testing {
namespace {

void WriteConfig(const std::string& dir, int target_port,
                 const std::vector<std::string>& rule_files) {
  std::ofstream config(dir + "/prometheus.yml");
  config << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n";
  if (!rule_files.empty()) {
    config << "rule_files:\n";
    for (const auto& f : rule_files) config << "  - '" << f << "'\n";
  }
  config << "scrape_configs:\n  - job_name: tunnelguard\n"
         << "    static_configs:\n      - targets: ['127.0.0.1:" << target_port << "']\n";
}

// Prometheus cannot listen on port 0 and tell us the port: StartOnFreePorts retries if the
// port is taken between choosing it and Prometheus binding it.
std::optional<Subprocess> StartServer(const std::string& dir, int target_port,
                                      const std::vector<std::string>& rule_files, bool native,
                                      int* port) {
  WriteConfig(dir, target_port, rule_files);
  const std::string log = dir + "/prometheus.log";
  std::vector<int> ports;
  auto server = StartOnFreePorts(
      1,
      [&](const std::vector<int>& pick) {
        std::vector<std::string> argv = {
            "prometheus", "--config.file=" + dir + "/prometheus.yml",
            "--storage.tsdb.path=" + dir + "/tsdb",
            "--web.listen-address=127.0.0.1:" + std::to_string(pick[0])};
        if (native) argv.push_back("--enable-feature=native-histograms");
        return Subprocess::Start(argv, {{}, log, ""});
      },
      log, &ports);
  if (server) *port = ports[0];
  return server;
}

}  // namespace

TestPrometheus::TestPrometheus(const std::string& dir, int target_port,
                               const std::vector<std::string>& rule_files, bool native_histograms)
    : server_(StartServer(dir, target_port, rule_files, native_histograms, &port_)) {}

std::string TestPrometheus::Get(const std::string& path) const {
  return HttpGet(port_, path).value_or("");
}

std::string TestPrometheus::Query(const std::string& promql) const {
  return HttpGet(port_, "/api/v1/query?query=" + UrlEncode(promql)).value_or("");
}

std::string TestPrometheus::QueryAt(const std::string& promql, double unix_seconds) const {
  char t[32];
  std::snprintf(t, sizeof(t), "%.3f", unix_seconds);
  return HttpGet(port_, "/api/v1/query?query=" + UrlEncode(promql) + "&time=" + t).value_or("");
}

std::string UrlEncode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) != 0 || c == '_' || c == '.' || c == '-') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[4];
      std::snprintf(buf, sizeof(buf), "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

}  // namespace tg::testing
