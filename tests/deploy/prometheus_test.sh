#!/usr/bin/env bash
# deploy/prometheus: both scrape configs and the rules pass promtool's checks, and the alert
# rules pass their unit tests (each alert fires on its input series and stays quiet on the
# others). Self-checks prove the tests can fail: a rule with a loosened threshold must break
# `promtool test rules`.
source "$(dirname "$0")/lib.sh"
require_tool promtool prometheus
SRC=$REPO/deploy/prometheus

# check config resolves rule_files relative to the config: run in a copy to keep the tree clean.
cp -r "$SRC" "$TMP/p"
cd "$TMP/p"
for cfg in prometheus.yml prometheus-file-sd.yml; do
  promtool check config "$cfg" >/dev/null || fail "promtool check config $cfg"
  ok "check config $cfg"
done
promtool check rules tunnelguard.rules.yml >/dev/null || fail "promtool check rules"
ok "check rules tunnelguard.rules.yml"
promtool test rules tunnelguard.rules.test.yml || fail "promtool test rules"
ok "test rules: every alert fires and stays quiet where it should"

# Every alert in the rules file has a test case, and the reverse.
rules=$(sed -n 's/^ *- alert: *//p' tunnelguard.rules.yml | sort -u)
tested=$(sed -n 's/^ *alertname: *//p' tunnelguard.rules.test.yml | sort -u)
[ "$rules" = "$tested" ] || fail "alerts vs tested alerts differ:"$'\n'"$(diff <(echo "$rules") <(echo "$tested"))"
ok "all $(echo "$rules" | wc -l) alerts have tests"

# Every alert links to its own section of docs/runbook.md, and that section exists.
for a in $rules; do
  grep -q "runbook_url: \"docs/runbook.md#${a,,}\"" tunnelguard.rules.yml || fail "$a: no runbook_url to docs/runbook.md#${a,,}"
  grep -q "^## $a " "$REPO/docs/runbook.md" || fail "$a: no '## $a' section in docs/runbook.md"
done
ok "every alert has a runbook_url and a runbook section"

# The rule tests use the policy names the exporter emits (tests/e2e/alerts_test.cc captures
# a real agent's series; here the hand-written cases must not drift from them).
bad=$( (grep -o "policy=\"[a-z_]*\"" tunnelguard.rules.test.yml | cut -d'"' -f2
        grep -o "policy: [a-z_]*[,}]" tunnelguard.rules.test.yml | sed 's/policy: //; s/[,}]$//') |
      sort -u | grep -vx -e address_families -e wx_memory || true)
[ -z "$bad" ] || fail "rule tests use policy names the exporter never emits: $bad"
ok "rule tests use only the exporter's policy names"

# Self-check: a p99 threshold of 5 s would not fire on the test's 1.75 s; the test must notice.
sed -i 's/) > 0.25$/) > 5/' tunnelguard.rules.yml
grep -q ') > 5$' tunnelguard.rules.yml || fail "self-check: could not mutate the latency rule"
if promtool test rules tunnelguard.rules.test.yml >/dev/null 2>&1; then
  fail "self-check: a mutated rule still passed promtool test rules"
fi
ok "self-check: a mutated rule fails the rule tests"
echo "prometheus: all checks passed"
