// Fan-out of denial events to any number of readers (gRPC WatchEvents streams) without letting
// one slow reader slow the agent or the others: each subscriber has a bounded queue; when it is
// full the oldest event is dropped and counted, and the reader learns how many it lost.
#ifndef TUNNELGUARD_AGENT_EVENT_HUB_H_
#define TUNNELGUARD_AGENT_EVENT_HUB_H_

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "agent/enforce/policy_events.h"

namespace tg {

class EventHub {
 public:
  static constexpr size_t kDefaultQueue = 1024;

  class Subscription {
   public:
    // The next event, waiting up to `timeout`; `dropped` gets how many were lost before it.
    std::optional<PolicyEvent> Next(std::chrono::milliseconds timeout, uint64_t* dropped);

   private:
    friend class EventHub;
    explicit Subscription(size_t capacity, std::function<bool(const PolicyEvent&)> filter)
        : capacity_(capacity), filter_(std::move(filter)) {}
    void Push(const PolicyEvent& e);

    const size_t capacity_;
    const std::function<bool(const PolicyEvent&)> filter_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<PolicyEvent> queue_;
    uint64_t pending_dropped_ = 0;
  };

  // `filter` runs on the publisher's thread: keep it cheap.
  std::shared_ptr<Subscription> Subscribe(std::function<bool(const PolicyEvent&)> filter,
                                          size_t capacity = kDefaultQueue);
  // Never blocks on a reader.
  void Publish(const PolicyEvent& e);

 private:
  mutable std::mutex mu_;
  std::vector<std::weak_ptr<Subscription>> subs_;
};

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_EVENT_HUB_H_
