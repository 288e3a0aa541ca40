#include "agent/enforce/event_hub.h"

#include <algorithm>

namespace tg {

std::optional<PolicyEvent> EventHub::Subscription::Next(std::chrono::milliseconds timeout,
                                                        uint64_t* dropped) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, timeout, [this] { return !queue_.empty(); })) return std::nullopt;
  PolicyEvent e = std::move(queue_.front());
  queue_.pop_front();
  if (dropped != nullptr) *dropped = pending_dropped_;
  pending_dropped_ = 0;
  return e;
}

void EventHub::Subscription::Push(const PolicyEvent& e) {
  if (filter_ && !filter_(e)) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() >= capacity_) {
      queue_.pop_front();
      ++pending_dropped_;
    }
    queue_.push_back(e);
  }
  cv_.notify_one();
}

std::shared_ptr<EventHub::Subscription> EventHub::Subscribe(
    std::function<bool(const PolicyEvent&)> filter, size_t capacity) {
  std::shared_ptr<Subscription> s(
      new Subscription(std::max<size_t>(capacity, 1), std::move(filter)));
  std::lock_guard<std::mutex> lock(mu_);
  subs_.push_back(s);
  return s;
}

void EventHub::Publish(const PolicyEvent& e) {
  std::vector<std::shared_ptr<Subscription>> live;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::erase_if(subs_, [](const auto& w) { return w.expired(); });
    for (const auto& w : subs_) {
      if (auto s = w.lock()) live.push_back(std::move(s));
    }
  }
  for (const auto& s : live) s->Push(e);
}

}  // namespace tg
