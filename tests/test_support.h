// Helpers for tests that need privileges or kernel features. Outside CI such a test may skip,
// saying why; in CI (CI=true) it fails instead, so nothing is skipped silently.
#ifndef TUNNELGUARD_TESTS_TEST_SUPPORT_H_
#define TUNNELGUARD_TESTS_TEST_SUPPORT_H_

#include <gtest/gtest.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace tg::testing {

inline bool InCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) != "" && std::string(ci) != "false" &&
         std::string(ci) != "0";
}

// `uname -r`: the build that refused (or loaded) a feature, for the one line that says so.
inline std::string KernelRelease() {
  struct utsname u {};
  return ::uname(&u) == 0 ? std::string(u.release) : std::string("unknown kernel");
}

}  // namespace tg::testing

// Skips (outside CI) or fails (in CI) the current test when `cond` is false.
#define TG_REQUIRE(cond, why)                            \
  do {                                                   \
    if (!(cond)) {                                       \
      if (::tg::testing::InCi()) {                       \
        FAIL() << "cannot run in CI: " << (why);         \
      } else {                                           \
        GTEST_SKIP() << "skipped outside CI: " << (why); \
      }                                                  \
    }                                                    \
  } while (0)

#define TG_REQUIRE_ROOT() TG_REQUIRE(::geteuid() == 0, "needs root (BPF, cgroups)")

#endif  // TUNNELGUARD_TESTS_TEST_SUPPORT_H_
