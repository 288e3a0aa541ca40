# The enforcement core's guest tests: one GoogleTest binary run as root inside each
# kernel of the matrix. It drives the library directly and the real CLI (copied in as a file).
tg_vm_gtest(tg_vm_enforce SOURCES
  enforce_conformance_test.cc
  enforce_cost_test.cc
  enforce_guest_test.cc
  enforce_lifecycle_test.cc
  setup_exempt_test.cc
  LIBS tg_vm_support)
target_compile_definitions(tg_vm_enforce PRIVATE TG_CLI_PATH="$<TARGET_FILE:tunnelguard>")
add_dependencies(tg_vm_enforce tunnelguard)
# Real programs the issue names, run in the cgroup under W^X: curl, and Debian's python3 with
# its standard library (a directory: the initramfs builder copies it whole).
find_program(TG_CURL curl REQUIRED)
set(TG_PYTHON /usr/bin/python3.11)
set(tg_enforce_files tunnelguard ${TG_CURL} ${TG_PYTHON} /usr/lib/python3.11)
# Cost.* is a benchmark (it prints per-call ratios), not a test: bench/run.sh section 3 runs it
# (tests/vm/run-in-vm.sh --kernel K -- build/tests/vm/tg_vm_enforce --gtest_filter=Cost.*) and
# bench.smoke covers it with one short round.
tg_vm_test(enforce COMMAND tg_vm_enforce --gtest_filter=-NoBpfLsm.*:Cost.*
           FILES ${tg_enforce_files} TIMEOUT 300)
# Booted without bpf in lsm=: attach must refuse (programs would attach and enforce nothing).
tg_vm_test(enforce_no_bpf_lsm
  LSM lockdown,capability,landlock,yama,apparmor
  COMMAND tg_vm_enforce --gtest_filter=NoBpfLsm.* FILES tunnelguard)
