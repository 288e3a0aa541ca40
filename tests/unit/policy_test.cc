#include "policy.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>

#include "bpf/policy_abi.h"
#include "bpf/policy_wx.h"
#include "denial_log.h"
#include "pin_layout.h"
#include "policy_events.h"

namespace tg {
namespace {

TEST(PolicyNames, RoundTrip) {
  for (PolicyKind k : kAllPolicyKinds) EXPECT_EQ(PolicyFromName(PolicyName(k)), k);
  EXPECT_EQ(PolicyName(PolicyKind::kAddressFamilies), "address_families");
  EXPECT_EQ(PolicyName(PolicyKind::kWxMemory), "wx_memory");
  EXPECT_FALSE(PolicyFromName("seccomp").has_value());
}

TEST(Modes, ParseAndAbi) {
  EXPECT_EQ(ParseMode("enforce").value(), Mode::kEnforce);
  EXPECT_EQ(ParseMode("audit").value(), Mode::kAudit);
  auto bad = ParseMode("warn");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "unknown mode 'warn'; use --mode enforce or --mode audit");
  for (Mode m : {Mode::kEnforce, Mode::kAudit}) EXPECT_EQ(ModeFromAbi(ModeToAbi(m)), m);
  EXPECT_FALSE(ModeFromAbi(0).has_value());  // an unwritten config is no mode at all
}

TEST(Mechanisms, ParseAndAbi) {
  for (Mechanism m : {Mechanism::kLsmCgroup, Mechanism::kLsmGlobal, Mechanism::kObserve}) {
    EXPECT_EQ(ParseMechanism(MechanismName(m)).value(), m);
    EXPECT_EQ(MechanismFromAbi(MechanismToAbi(m)), m);
  }
  EXPECT_EQ(ParseMechanism("lsm-global").value(), Mechanism::kLsmGlobal);
  EXPECT_FALSE(ParseMechanism("kprobe").ok());
}

TEST(PinLayout, PathsAndManifests) {
  EXPECT_EQ(TargetDir("/sys/fs/bpf/tunnelguard", 42), "/sys/fs/bpf/tunnelguard/42");
  EXPECT_EQ(PolicyDir("/b", 42, PolicyKind::kWxMemory), "/b/42/wx_memory");
  EXPECT_EQ(LinkPinName("tg_fam_sock"), "link_tg_fam_sock");
  for (PolicyKind k : kAllPolicyKinds) {
    const PinManifest& m = ManifestFor(k);
    EXPECT_FALSE(m.programs.empty());
    for (const auto& name : m.Maps()) EXPECT_LE(name.size(), 15u) << name;  // kernel limit
    for (const auto& name : m.programs) EXPECT_LE(name.size(), 15u) << name;
  }
}

TEST(DecodeEvent, MapsKernelNamesToUserNames) {
  tg_policy_event raw{};
  raw.policy = TG_POLICY_WX;
  raw.action = TG_ACT_WOULD_DENY;
  raw.detail = TG_WX_MMAP_WRITABLE_FILE;
  raw.pid = 101;   // thread
  raw.tgid = 100;  // process
  raw.uid = 1000;
  std::memcpy(raw.comm, "jit-test", 8);
  const PolicyEvent e = DecodeEvent(raw);
  EXPECT_EQ(e.policy, PolicyKind::kWxMemory);
  EXPECT_EQ(e.action, Action::kWouldDeny);
  EXPECT_EQ(e.detail, "mmap_exec_writable_file");
  EXPECT_EQ(e.pid, 100u);
  EXPECT_EQ(e.tid, 101u);
  EXPECT_EQ(e.comm, "jit-test");
  EXPECT_EQ(FormatDenial(e),
            "wx_memory: would deny mmap_exec_writable_file for pid 100 "
            "(jit-test) uid 1000 in cgroup 0");

  raw.policy = TG_POLICY_FAMILIES;
  raw.action = TG_ACT_DENY;
  raw.detail = 17;
  std::memset(raw.comm, 'x', sizeof(raw.comm));  // no NUL: comm must stop at 16 bytes
  const PolicyEvent f = DecodeEvent(raw);
  EXPECT_EQ(f.detail, "packet");
  EXPECT_EQ(f.comm.size(), 16u);
}

TEST(RateLimiter, BurstThenSteadyRateAndCountsWhatItHolds) {
  using namespace std::chrono_literals;
  RateLimiter limiter(3, 2);  // 3 at once, then 2 a second
  const auto t0 = RateLimiter::Clock::time_point{} + 1h;
  int allowed = 0;
  for (int i = 0; i < 100; ++i) allowed += limiter.Allow(t0) ? 1 : 0;
  EXPECT_EQ(allowed, 3);
  EXPECT_EQ(limiter.TakeSuppressed(), 97u);
  EXPECT_EQ(limiter.TakeSuppressed(), 0u);
  EXPECT_FALSE(limiter.Allow(t0 + 400ms));  // 0.8 tokens
  EXPECT_TRUE(limiter.Allow(t0 + 500ms));   // 1.0
  EXPECT_FALSE(limiter.Allow(t0 + 500ms));
  EXPECT_EQ(limiter.TakeSuppressed(), 2u);
  // A long quiet period refills to the burst, never beyond.
  allowed = 0;
  for (int i = 0; i < 10; ++i) allowed += limiter.Allow(t0 + 1h) ? 1 : 0;
  EXPECT_EQ(allowed, 3);
}

}  // namespace
}  // namespace tg
