// Polls an API call (GetStatus) every 20 ms on its own thread and records the slowest answer,
// the calls over 100 ms and the failures: the agent must stay responsive whatever a test does
// to it (tests/e2e/reliability_test.cc on this host, tests/vm/reliability_vm_test.cc in QEMU).
#ifndef TUNNELGUARD_TESTS_SUPPORT_RESPONSIVENESS_H_
#define TUNNELGUARD_TESTS_SUPPORT_RESPONSIVENESS_H_

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "tunnelguard/v1/agent.grpc.pb.h"

namespace tg::testing {

class Responsiveness {
 public:
  explicit Responsiveness(std::function<grpc::Status(std::chrono::milliseconds)> call)
      : call_(std::move(call)), thread_([this] { Loop(); }) {}
  ~Responsiveness() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  double max_ms() const { return max_ms_; }
  int calls() const { return calls_; }
  int failures() const { return failures_; }
  int slow() const { return slow_; }  // calls that took 100 ms or more
  std::string first_failure() const { return first_failure_; }
  // The q-quantile (0..1) of the call times in ms; call after Stop().
  double Quantile(double q) const {
    if (times_.empty()) return 0;
    std::vector<double> t = times_;
    std::sort(t.begin(), t.end());
    return t[std::min(t.size() - 1, static_cast<size_t>(q * static_cast<double>(t.size())))];
  }

 private:
  void Loop() {
    while (!stop_) {
      const auto t0 = std::chrono::steady_clock::now();
      const grpc::Status st = call_(std::chrono::milliseconds(1000));
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      times_.push_back(ms);
      ++calls_;
      max_ms_ = std::max(max_ms_.load(), ms);
      if (ms >= 100.0) ++slow_;
      if (!st.ok()) {
        if (failures_++ == 0) first_failure_ = st.error_message();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  std::function<grpc::Status(std::chrono::milliseconds)> call_;
  std::atomic<bool> stop_{false};
  std::atomic<double> max_ms_{0};
  std::atomic<int> calls_{0}, failures_{0}, slow_{0};
  std::string first_failure_;
  std::vector<double> times_;  // written by the polling thread only
  std::thread thread_;
};

// GetStatus on one channel for the whole run, as `tunnelctl --watch` or a dashboard keeps it.
// (The including test links tunnelguard_proto.)
class GetStatusPoller : public Responsiveness {
 public:
  explicit GetStatusPoller(tunnelguard::v1::Agent::Stub* stub)
      : Responsiveness([stub](std::chrono::milliseconds d) {
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() + d);
          tunnelguard::v1::GetStatusResponse r;
          return stub->GetStatus(&ctx, tunnelguard::v1::GetStatusRequest(), &r);
        }) {}
};

}  // namespace tg::testing

#endif  // TUNNELGUARD_TESTS_SUPPORT_RESPONSIVENESS_H_
