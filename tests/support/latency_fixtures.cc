#include "latency_fixtures.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>

namespace tg::testing {
namespace {

bool CanConnect(const std::string& host, int port) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_INET;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof(*v4);
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    family = AF_INET6;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof(*v6);
  } else {
    return false;
  }
  const int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&ss), len) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

bool WaitForListener(const std::string& host, int port) {
  return WaitFor([&] { return CanConnect(host, port); }, std::chrono::seconds(5));
}

std::optional<Subprocess> StartDelayServer(const std::string& host, int* port,
                                           const std::string& delay, const std::string& log,
                                           const std::string& timings) {
  Subprocess::Options o;
  o.output_path = log;
  std::vector<std::string> argv = {TG_DELAY_SERVER,       "--host", host, "--port",
                                   std::to_string(*port), "--mix",  delay};
  if (!timings.empty()) argv.insert(argv.end(), {"--timings", timings});
  auto p = Subprocess::Start(argv, o);
  // Its own "listening HOST PORT" line, not merely something accepting on the port: with a
  // port picked in advance, another process may have taken it in between, and connecting
  // would then reach that process instead (one flaky accuracy failure was exactly that).
  int bound = 0;
  const bool up = WaitFor(
      [&] {
        std::istringstream lines(ReadFile(log));
        for (std::string word, addr; lines >> word;) {
          if (word == "listening" && lines >> addr >> bound) return true;
        }
        return !p.Running();
      },
      std::chrono::seconds(5));
  if (!up || bound <= 0 || (*port != 0 && bound != *port)) return std::nullopt;
  *port = bound;
  return p;
}

std::optional<Subprocess> StartDelayServer(const std::string& host, int port,
                                           const std::string& delay, const std::string& log) {
  return StartDelayServer(host, &port, delay, log);
}

std::optional<std::vector<int64_t>> ServerTimings(const std::string& path, size_t count) {
  std::vector<int64_t> ns;
  auto read = [&] {
    ns.clear();
    std::istringstream lines(ReadFile(path));
    for (int64_t v = 0; lines >> v;) ns.push_back(v);
    return ns.size() >= count;
  };
  if (!WaitFor(read, std::chrono::seconds(10)) || ns.size() != count) return std::nullopt;
  std::sort(ns.begin(), ns.end());
  return ns;
}

namespace {

std::string NginxConfig(const std::string& dir, int port, int tls_port, int backend_port,
                        bool http2) {
  const std::string h2 = http2 ? " http2" : "";
  std::string tls;
  if (tls_port > 0) {
    tls = "  server {\n    listen 127.0.0.1:" + std::to_string(tls_port) + " ssl" + h2 +
          ";\n    ssl_protocols TLSv1.2 TLSv1.3;\n    ssl_certificate " + dir +
          "/cert.pem;\n    ssl_certificate_key " + dir + "/key.pem;\n    root " + dir +
          "/www;\n  }\n";
  }
  std::string plain = "    root " + dir + "/www;\n";
  std::string upstream;
  if (backend_port > 0) {
    upstream = "  upstream backend { server 127.0.0.1:" + std::to_string(backend_port) +
               "; keepalive 16; }\n";
    plain =
        "    location / {\n      proxy_pass http://backend;\n      proxy_http_version 1.1;\n"
        "      proxy_set_header Connection \"\";\n    }\n";
  }
  std::ostringstream conf;
  // One process (no master): the test's SIGKILL on teardown then leaves no orphaned worker
  // behind holding the port.
  conf << "daemon off;\nmaster_process off;\npid " << dir << "/nginx.pid;\nerror_log " << dir
       << "/error.log warn;\nevents { worker_connections 4096; }\nhttp {\n  access_log off;\n"
       << "  client_body_temp_path " << dir << ";\n  proxy_temp_path " << dir << ";\n"
       << "  fastcgi_temp_path " << dir << ";\n  uwsgi_temp_path " << dir << ";\n"
       << "  scgi_temp_path " << dir << ";\n  keepalive_requests 1000000;\n"
       << upstream << "  server {\n    listen 127.0.0.1:" << port << h2 << ";\n"
       << plain << "  }\n"
       << tls << "}\n";
  return conf.str();
}

}  // namespace

std::optional<Subprocess> StartNginx(const std::string& dir, int* port, int* tls_port,
                                     int backend_port, bool http2) {
  ::chmod(dir.c_str(), 0755);  // nginx's workers (www-data) read the site from here
  ::mkdir((dir + "/www").c_str(), 0755);
  std::ofstream(dir + "/www/index.html") << "hello from nginx\n";
  if (tls_port != nullptr) {
    const auto [rc, out] = RunCommand(
        "openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 -keyout " + dir +
        "/key.pem -out " + dir + "/cert.pem 2>&1");
    if (rc != 0) return std::nullopt;
  }
  const std::string out = dir + "/nginx.out";
  std::vector<int> ports;
  auto p = StartOnFreePorts(
      tls_port != nullptr ? 2 : 1,
      [&](const std::vector<int>& pick) {
        std::ofstream(dir + "/nginx.conf")
            << NginxConfig(dir, pick[0], pick.size() > 1 ? pick[1] : 0, backend_port, http2);
        return Subprocess::Start({"nginx", "-c", dir + "/nginx.conf", "-p", dir}, {{}, out, ""});
      },
      out, &ports);
  if (!p) return std::nullopt;
  *port = ports[0];
  if (tls_port != nullptr) *tls_port = ports[1];
  return p;
}

std::optional<nlohmann::json> RunClient(const std::vector<std::string>& args,
                                        const std::string& cgroup, const std::string& scratch,
                                        std::string* output) {
  std::vector<std::string> argv = {TG_HTTP_CLIENT};
  argv.insert(argv.end(), args.begin(), args.end());
  if (!cgroup.empty()) {
    argv.push_back("--cgroup");
    argv.push_back(cgroup);
  }
  static int n = 0;
  Subprocess::Options o;
  o.output_path = scratch + "/client-" + std::to_string(++n) + ".out";
  auto p = Subprocess::Start(argv, o);
  const auto rc = p.Wait(std::chrono::seconds(120));
  const std::string text = ReadFile(o.output_path);
  if (output != nullptr) *output = text;
  if (!rc || *rc != 0) return std::nullopt;
  const auto last = text.rfind("{\"requests\"");
  if (last == std::string::npos) return std::nullopt;
  return nlohmann::json::parse(text.substr(last), nullptr, false);
}

}  // namespace tg::testing
