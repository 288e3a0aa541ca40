// Template definitions for subprocess.h.
#ifndef TUNNELGUARD_TESTS_SUPPORT_SUBPROCESS_INL_H_
#define TUNNELGUARD_TESTS_SUPPORT_SUBPROCESS_INL_H_

#include <thread>

namespace tg::testing {

template <typename Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace tg::testing

#endif  // TUNNELGUARD_TESTS_SUPPORT_SUBPROCESS_INL_H_
