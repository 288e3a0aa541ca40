# Enforcement integrity and reach: the canary, persistence and adoption, and the
# fallback mechanisms, in real BPF-LSM kernels.
tg_vm_gtest(tg_vm_integrity SOURCES
  canary_test.cc
  persistence_test.cc
  lsm_global_test.cc
  LIBS tg_vm_support)
target_compile_definitions(tg_vm_integrity PRIVATE TG_CLI_PATH="$<TARGET_FILE:tunnelguard>")
add_dependencies(tg_vm_integrity tunnelguard)
tg_vm_test(integrity COMMAND tg_vm_integrity --gtest_filter=-NoBpfLsm.* FILES tunnelguard
           TIMEOUT 300)
# Booted without bpf in lsm=: attach refuses; with the pre-check skipped the canary catches it.
tg_vm_test(integrity_no_bpf_lsm
  LSM lockdown,capability,landlock,yama,apparmor
  COMMAND tg_vm_integrity --gtest_filter=NoBpfLsm.* FILES tunnelguard)
# The daemon under a denial flood, SIGKILLed at 20 random points, and the tunnel's cgroup
# re-created 20 times, all under real enforcement.
tg_vm_gtest(tg_vm_reliability SOURCES reliability_vm_test.cc LIBS tg_vm_support tunnelguard_proto)
target_compile_definitions(tg_vm_reliability PRIVATE TG_CLI_PATH="$<TARGET_FILE:tunnelguard>")
add_dependencies(tg_vm_reliability tunnelguard tg-flood)
tg_vm_test(reliability COMMAND tg_vm_reliability FILES tunnelguard tg-flood TIMEOUT 300
           KERNELS 6.12 newest)
