# Every query of every panel in a Grafana dashboard JSON (panels inside rows too), one object
# per target: {id, title, type, refId, expr, legend}, in dashboard order; targets without an
# `expr` are left out. Grafana's template variables in `expr` are replaced:
#   $__rate_interval, $__interval, $__range  by $vars.__rate_interval, .__interval, .__range
#                                            (default 5m, 5m, 1h)
#   $name / ${name} (a dashboard variable)   by $vars[name] (default ".*", the "All" value)
# Usage: jq -c -f panel-queries.jq --argjson vars '{"instance": "127.0.0.1:9612"}' DASHBOARD
# Shared by tests/deploy/dashboard_test.sh (PromQL must parse) and tests/e2e/dashboard_test.cc
# (each query must return data from a real agent), so both check the same expressions.
[.panels[] | (., (.panels // [])[])
 | {id, title, type} as $p
 | (.targets // [])[] | select(.expr != null)
 | $p + {refId, legend: (.legendFormat // ""),
         expr: (.expr
                | gsub("\\$__rate_interval"; $vars.__rate_interval // "5m")
                | gsub("\\$__interval"; $vars.__interval // "5m")
                | gsub("\\$__range"; $vars.__range // "1h")
                | gsub("\\$\\{?(?<v>[a-z_]+)\\}?"; $vars[.v] // ".*"))}]
| .[]
