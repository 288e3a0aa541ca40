#include "agent/enforce/policy.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <regex>
#include <sstream>

#include "agent/enforce/denial_log.h"
#include "agent/enforce/pin_layout.h"
#include "agent/enforce/policy_events.h"
#include "bpf/policy_abi.h"
#include "bpf/policy_wx.h"

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
  PolicyEvent named = e;
  named.target = "cloudflared-tunnel-b.service";
  named.cgroup_id = 77;
  EXPECT_EQ(FormatDenial(named),
            "wx_memory: would deny mmap_exec_writable_file for pid 100 "
            "(jit-test) uid 1000 in cloudflared-tunnel-b.service (cgroup 77)");

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

// Every denial is a line or counted in one: "(N similar lines suppressed)" on the next line let
// through, or "N denial lines suppressed" from Tick() once the denials stopped. Returns
// {lines, denials accounted for}.
std::pair<int, uint64_t> Account(const std::string& log) {
  static const std::regex kSimilar(R"(\((\d+) similar lines suppressed\))");
  static const std::regex kSummary(R"(: (\d+) denial lines suppressed by rate limiting)");
  std::istringstream in(log);
  int lines = 0;
  uint64_t denials = 0;
  std::smatch m;
  for (std::string line; std::getline(in, line); ++lines) {
    if (std::regex_search(line, m, kSummary)) {
      denials += std::stoull(m[1]);
    } else {
      denials += 1;
      if (std::regex_search(line, m, kSimilar)) denials += std::stoull(m[1]);
    }
  }
  return {lines, denials};
}

PolicyEvent Denial() {
  PolicyEvent e;
  e.action = Action::kWouldDeny;
  e.detail = "unix";
  e.pid = 42;
  e.comm = "flood";
  return e;
}

TEST(DenialLog, AFloodIsBoundedAndEveryDenialIsAccountedFor) {
  using namespace std::chrono_literals;
  const auto t0 = RateLimiter::Clock::time_point{} + 1h;
  DenialLog log(3, 1);  // 3 at once, then 1 a second
  ::testing::internal::CaptureStderr();
  // 10 s at one denial every 100 us: 100,000 denials.
  uint64_t sent = 0;
  for (auto t = t0; t < t0 + 10s; t += 100us, ++sent) {
    log.Log(Denial(), t);
    log.Tick(t);  // as the event loop does: nothing while the flood goes on
  }
  const std::string during = ::testing::internal::GetCapturedStderr();
  const auto [lines, accounted] = Account(during);
  EXPECT_LE(lines, 3 + 10) << during;
  EXPECT_GE(lines, 3 + 9) << during;
  EXPECT_LT(accounted, sent) << "the last second's count is still held";
  ::testing::internal::CaptureStderr();
  const auto end = t0 + 10s;
  log.Tick(end + 500ms);  // not quiet long enough yet
  log.Tick(end + 1s);     // the flood stopped a second ago: one summary line
  log.Tick(end + 5s);     // nothing more to say
  const std::string after = ::testing::internal::GetCapturedStderr();
  const auto [summary_lines, summarized] = Account(after);
  EXPECT_EQ(summary_lines, 1) << after;
  EXPECT_NE(after.find("address_families: "), std::string::npos) << after;
  EXPECT_EQ(accounted + summarized, sent) << during << after;
}

TEST(DenialLog, QuietDenialsAreWrittenOneByOne) {
  using namespace std::chrono_literals;
  const auto t0 = RateLimiter::Clock::time_point{} + 1h;
  DenialLog log(3, 1);
  ::testing::internal::CaptureStderr();
  for (int i = 0; i < 5; ++i) {
    log.Log(Denial(), t0 + i * 2s);
    log.Tick(t0 + i * 2s + 1s);
  }
  log.Flush();
  const std::string out = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(Account(out), std::make_pair(5, uint64_t{5})) << out;
  EXPECT_EQ(out.find("suppressed"), std::string::npos) << out;
  EXPECT_NE(out.find("would deny unix socket for pid 42 (flood)"), std::string::npos) << out;
}

}  // namespace
}  // namespace tg
