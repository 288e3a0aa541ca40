// The seccomp filters systemd installs for RestrictAddressFamilies= (allow-list) and
// MemoryDenyWriteExecute=yes, rebuilt with libseccomp rule for rule as systemd 252 builds them
// (src/shared/seccomp-util.c: seccomp_restrict_address_families() and
// seccomp_memory_deny_write_execute(), native x86-64 arch). The conformance test installs it
// in a child to measure what systemd itself would return, case by case.
#ifndef TUNNELGUARD_TESTS_VM_SYSTEMD_SECCOMP_H_
#define TUNNELGUARD_TESTS_VM_SYSTEMD_SECCOMP_H_

#include <cstdint>
#include <string>

namespace tg::testing {

// Installs both filters on the calling thread (and its future children). `allowed_families`
// has bit N set for each allowed family N. Returns "" or what failed.
std::string InstallSystemdFilters(uint64_t allowed_families);

}  // namespace tg::testing

#endif  // TUNNELGUARD_TESTS_VM_SYSTEMD_SECCOMP_H_
