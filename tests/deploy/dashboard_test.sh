#!/usr/bin/env bash
# dashboards/: every dashboard JSON is
#  1. structurally sound (grafana/structure.mjs: ids, grid, datasource and instance variables,
#     instance filter on every selector, only known metric names);
#  2. type-correct against Grafana's published schema (npm @grafana/schema, pinned in
#     grafana/package-lock.json, checked with tsc: the dashboard as `Dashboard`, each panel's
#     options and custom field config as its panel type's `Options`/`FieldConfig`);
#  3. made of PromQL that parses: every `expr` (template variables replaced by values of the
#     right shape) becomes a recording rule and `promtool check rules` parses them all;
# and the provisioning YAML parses with the keys Grafana reads. Self-checks: a misspelt
# property must fail step 2 and a broken expression step 3.
# node_modules goes to NODE_DIR (the build tree), never into git.
# Usage: dashboard_test.sh NODE_DIR
source "$(dirname "$0")/lib.sh"
require_tool node nodejs
require_tool npm npm
require_tool promtool prometheus
require_tool jq jq
require_tool python3 python3-yaml
[ $# -eq 1 ] || fail "usage: $0 NODE_DIR"
NODE_DIR=$1
G=$REPO/tests/deploy/grafana

# The schema packages, installed once per build tree and again when the lock file changes.
mkdir -p "$NODE_DIR"
cp "$G/package.json" "$G/package-lock.json" "$G/tsconfig.json" "$NODE_DIR/"
if ! cmp -s "$G/package-lock.json" "$NODE_DIR/.installed-lock" || [ ! -x "$NODE_DIR/node_modules/.bin/tsc" ]; then
  (cd "$NODE_DIR" && npm ci --no-audit --no-fund --silent) || fail "npm ci in $NODE_DIR (npm registry reachable?)"
  cp "$G/package-lock.json" "$NODE_DIR/.installed-lock"
fi

# tsc_check DASHBOARD: 0 when the dashboard type-checks; tsc's errors on stdout otherwise.
tsc_check() {
  node "$G/gen-check.mjs" "$1" "$NODE_DIR/check.ts" || return 2
  (cd "$NODE_DIR" && ./node_modules/.bin/tsc -p tsconfig.json)
}

# promql_rules DASHBOARD OUT: a rules file with one recording rule per expr; the queries come
# from grafana/panel-queries.jq (shared with the e2e check that runs them against a real agent),
# with its default values for the variables, then the annotations' queries the same way.
promql_rules() {
  {
    jq -c -f "$G/panel-queries.jq" --argjson vars '{}' "$1"
    jq -c '.annotations.list[] | select(.target.expr != null) | {expr: (.target.expr
      | gsub("\\$__interval"; "5m") | gsub("\\$\\{?(?<v>[a-z_]+)\\}?"; ".*"))}' "$1"
  } | jq -s '{groups: [{name: "dashboard", rules: [to_entries[] |
             {record: "dashboard:expr_\(.key)", expr: .value.expr}]}]}' >"$2"
}

mapfile -t dashboards < <(cd "$REPO" && git ls-files 'dashboards/*.json')
[ ${#dashboards[@]} -ge 1 ] || fail "no dashboards/*.json"
for f in "${dashboards[@]}"; do
  node "$G/structure.mjs" "$REPO/$f" "$G/known-metrics.txt" || fail "$f: structure"
  out=$(tsc_check "$REPO/$f") || fail "$f: not valid against @grafana/schema:"$'\n'"$out"
  ok "$f: valid against @grafana/schema $(jq -r '.packages["node_modules/@grafana/schema"].version' "$G/package-lock.json")"
  promql_rules "$REPO/$f" "$TMP/rules.json"
  n=$(jq '.groups[0].rules | length' "$TMP/rules.json")
  [ "$n" -gt 0 ] || fail "$f: no PromQL found"
  promtool check rules "$TMP/rules.json" >"$TMP/promtool.out" 2>&1 ||
    fail "$f: PromQL does not parse:"$'\n'"$(cat "$TMP/promtool.out")"
  ok "$f: $n PromQL expressions parse"
done

python3 - "$REPO/dashboards/provisioning" <<'PY' || fail "provisioning YAML"
import sys, yaml, pathlib
d = pathlib.Path(sys.argv[1])
dash = yaml.safe_load((d / "dashboards" / "tunnelguard.yml").read_text())
ds = yaml.safe_load((d / "datasources" / "prometheus.yml").read_text())
assert dash["apiVersion"] == 1 and dash["providers"][0]["options"]["path"], "dashboard provider"
assert ds["apiVersion"] == 1 and ds["datasources"][0]["type"] == "prometheus", "datasource"
PY
ok "provisioning YAML"

# Self-checks on mutated copies of the first dashboard.
first=$REPO/${dashboards[0]}
sed '0,/"gridPos"/s/"gridPos"/"gridpos"/' "$first" >"$TMP/typo.json"
if tsc_check "$TMP/typo.json" >/dev/null; then fail "self-check: a misspelt gridPos passed the schema check"; fi
ok "self-check: a misspelt property fails the schema check"
promql_rules "$first" "$TMP/rules.json"
jq '.groups[0].rules[0].expr |= sub("\\)$"; "")' "$TMP/rules.json" >"$TMP/broken.json"
if promtool check rules "$TMP/broken.json" >/dev/null 2>&1; then fail "self-check: a broken expr parsed"; fi
ok "self-check: a broken expression fails to parse"
echo "dashboards: all checks passed"
