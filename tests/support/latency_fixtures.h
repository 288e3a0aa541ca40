// Real servers and clients for the latency tests: the delay server, nginx (plain and TLS) and
// the self-timing client, each on a free loopback port in a temp dir, gone when the test ends.
#ifndef TUNNELGUARD_TESTS_BPF_LATENCY_FIXTURES_H_
#define TUNNELGUARD_TESTS_BPF_LATENCY_FIXTURES_H_

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "subprocess.h"

namespace tg::testing {

// True once something accepts TCP connections on host:port (polls up to 5 s).
bool WaitForListener(const std::string& host, int port);

// tg-delay-server on host:port answering after `delay` ("10ms" or "1ms:50,100ms:50"); nullopt
// unless the server itself reports listening on that port.
std::optional<Subprocess> StartDelayServer(const std::string& host, int port,
                                           const std::string& delay, const std::string& log);
// The same on a port the server picks itself (*port == 0; the chosen port is stored there):
// no window in which another process can take a port chosen in advance. With `timings` set,
// the server appends its own view of each request's latency there (see ServerTimings).
std::optional<Subprocess> StartDelayServer(const std::string& host, int* port,
                                           const std::string& delay, const std::string& log,
                                           const std::string& timings = "");

// The delay server's --timings file once it holds `count` requests (waits up to 10 s for the
// last lines: the server writes each after its response): nanoseconds, sorted, for
// tools::QuantileOfSorted. nullopt if it never reached `count` lines or holds more.
std::optional<std::vector<int64_t>> ServerTimings(const std::string& path, size_t count);

// Debian's nginx with its own config in `dir`: plain HTTP on *port, and (tls_port != nullptr)
// HTTPS with a freshly generated self-signed certificate on *tls_port; the ports are chosen
// here (StartOnFreePorts: nginx cannot bind port 0) and stored. With backend_port > 0 the
// plain server is a keep-alive reverse proxy to 127.0.0.1:backend_port (Traefik's job in
// front of a service, as in tools/demo.sh) instead of serving a static page. With `http2` both
// servers speak HTTP/2: the plain one cleartext with prior knowledge (h2c, nginx has no upgrade),
// the TLS one by ALPN.
std::optional<Subprocess> StartNginx(const std::string& dir, int* port, int* tls_port = nullptr,
                                     int backend_port = 0, bool http2 = false);

// Runs tg-http-client with `args` (inside `cgroup` when not empty: it joins it itself) and
// returns its JSON report, or nullopt (with the output in `*output`) when it failed.
std::optional<nlohmann::json> RunClient(const std::vector<std::string>& args,
                                        const std::string& cgroup, const std::string& scratch,
                                        std::string* output = nullptr);

// |measured - expected| <= max(3 %, 50 us): the accuracy promise.
inline bool WithinAccuracy(double measured, double expected) {
  const double tolerance = expected * 0.03 > 50e-6 ? expected * 0.03 : 50e-6;
  const double diff = measured > expected ? measured - expected : expected - measured;
  return diff <= tolerance;
}

}  // namespace tg::testing

#endif  // TUNNELGUARD_TESTS_BPF_LATENCY_FIXTURES_H_
