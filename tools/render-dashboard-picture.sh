#!/usr/bin/env bash
# Renders the main panels of the Grafana dashboard (dashboards/tunnelguard.json) to a PNG from
# a Prometheus's data, with gnuplot — the picture at the top of README.md. Each panel is drawn
# from the dashboard's own queries (tests/deploy/grafana/panel-queries.jq, the filter the
# dashboard tests use) through /api/v1/query_range (time series, heatmap, state timeline) and
# /api/v1/query (the stat tiles, at --end), so the picture shows what Grafana would.
#
# The README picture comes from the dashboard test's real agent and Prometheus, with a few
# minutes of demo traffic in phases of different backend delays (as root, after a build):
#   TG_DASHBOARD_PICTURE=$PWD/docs/dashboard.png build/tests/e2e/tg_dashboard_tests
# (TG_DASHBOARD_SECONDS=N sets the traffic's length, default 240.) Or point it at any
# Prometheus that scrapes a tunnelguard agent.
#
# Usage: tools/render-dashboard-picture.sh --prometheus URL --out FILE.png
#          [--instance INSTANCE] [--start UNIX] [--end UNIX] [--dashboard FILE]
#   --instance: the agent's `instance` label (default: every instance, Grafana's "All")
#   --start/--end: the time range (default: the last 5 minutes)
# Needs curl, jq and gnuplot (Debian: gnuplot-nox; tools/install-deps.sh installs them).
# RENDER_KEEP=1 keeps the data and the gnuplot script (their directory is printed).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

prom="" out="" instance=".*" start="" end=""
dashboard=$root/dashboards/tunnelguard.json
while [ $# -gt 0 ]; do
  case "$1" in
    --prometheus) prom=${2:?}; shift 2 ;;
    --out) out=${2:?}; shift 2 ;;
    --instance) instance=${2:?}; shift 2 ;;
    --start) start=${2:?}; shift 2 ;;
    --end) end=${2:?}; shift 2 ;;
    --dashboard) dashboard=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "render-dashboard-picture: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
[ -n "$prom" ] && [ -n "$out" ] || { echo "render-dashboard-picture: --prometheus and --out are required" >&2; exit 2; }
for t in curl jq gnuplot; do
  command -v "$t" >/dev/null || { echo "render-dashboard-picture: $t missing (tools/install-deps.sh)" >&2; exit 1; }
done
end=${end:-$(date +%s)}
start=${start:-$((end - 300))}
range=$((end - start))
[ "$range" -ge 30 ] || { echo "render-dashboard-picture: the range must be at least 30 s" >&2; exit 2; }

# Grafana's interval variables for this range at ~200 points per graph (1 s scrapes):
# $__interval = the step, $__rate_interval = max(4 scrapes, 2 steps).
step=$(( range / 200 > 2 ? range / 200 : 2 ))
rate_interval=$(( 2 * step > 10 ? 2 * step : 10 ))
# The heatmap: one column per 5 s or per step, whichever is longer.
hm_step=$(( step > 5 ? step : 5 ))

work=$(mktemp -d)
trap '[ -n "${RENDER_KEEP:-}" ] && echo "render-dashboard-picture: kept $work" || rm -rf "$work"' EXIT

# queries ID INTERVAL: the panel's targets as {title, refId, expr, legend} lines.
queries() {
  jq -c -f "$root/tests/deploy/grafana/panel-queries.jq" --argjson vars "$(jq -n \
    --arg i "$instance" --arg r "${rate_interval}s" --arg v "${2}s" --arg g "${range}s" \
    '{instance: $i, entrypoint: ".*", __rate_interval: $r, __interval: $v, __range: $g}')" \
    "$dashboard" | jq -c --argjson id "$1" 'select(.id == $id)'
}
title() { jq -r --argjson id "$1" '.panels[] | select(.id == $id) | .title' "$dashboard" | sed 's/: \$entrypoint//'; }
api() {  # api PATH ARGS...: GET with url-encoded arguments, the JSON answer on stdout
  local path=$1; shift
  curl -fsS -G "$prom$path" "$@" || { echo "render-dashboard-picture: $prom$path failed" >&2; exit 1; }
}

# series ID FILE [STEP]: every target's range result as gnuplot data blocks (two blank lines
# apart), each block headed by its legend ("{{label}}" filled in); prints the block count.
series() {
  local id=$1 file=$2 s=${3:-$step} n=0
  : >"$file"
  while read -r q; do
    api /api/v1/query_range --data-urlencode "query=$(jq -r .expr <<<"$q")" \
      --data-urlencode "start=$start" --data-urlencode "end=$end" --data-urlencode "step=$s" |
      jq -r --arg legend "$(jq -r .legend <<<"$q")" '.data.result[] | .metric as $m
        | ($legend | gsub("\\{\\{ *(?<l>[a-z_]+) *\\}\\}"; $m[.l] // "")) as $t
        | "\"\($t)\"", (.values[] | "\(.[0])\t\(.[1])"), "", ""' >>"$file"
  done < <(queries "$id" "$s")
  grep -c '^"' "$file" || true
}

# instant ID: the panel's instant values at --end as "legend<TAB>value" lines.
instant() {
  while read -r q; do
    api /api/v1/query --data-urlencode "query=$(jq -r .expr <<<"$q")" --data-urlencode "time=$end" |
      jq -r --arg legend "$(jq -r .legend <<<"$q")" '.data.result[] | .metric as $m
        | ($legend | gsub("\\{\\{ *(?<l>[a-z_]+) *\\}\\}"; $m[.l] // "")) as $t
        | "\($t)\t\(.value[1])"'
  done < <(queries "$1" "$step")
}

# --- data -----------------------------------------------------------------------------------
n_lat=$(series 8 "$work/latency.dat")
n_rps=$(series 14 "$work/rps.dat")
n_den=$(series 21 "$work/denials.dat")
n_con=$(series 15 "$work/connections.dat")
n_state=$(series 20 "$work/state.dat")
[ "$n_lat" -gt 0 ] && [ "$n_rps" -gt 0 ] ||
  { echo "render-dashboard-picture: no latency data for instance '$instance' in that range" >&2; exit 1; }

# The heatmap: cumulative `le` buckets per time → the count in each bucket, as a grid of
# "time bucket-index count" (0 → NaN: not drawn), and the bucket bounds for the y axis.
read -r hm_q < <(queries 10 "$hm_step")
api /api/v1/query_range --data-urlencode "query=$(jq -r .expr <<<"$hm_q")" \
  --data-urlencode "start=$start" --data-urlencode "end=$end" --data-urlencode "step=$hm_step" |
  jq -r '
    [.data.result[] | {le: (.metric.le | if . == "+Inf" then infinite else tonumber end),
                       v: (.values | map({key: (.[0] | tostring), value: (.[1] | tonumber)})
                                   | from_entries)}] | sort_by(.le) as $b
    | ($b | map(.v | keys[]) | unique | map(tonumber) | sort) as $ts
    # the rows worth drawing: from one bucket below the lowest used to one above the highest
    | [range(0; $b | length) as $i | select([$ts[] | tostring | ($b[$i].v[.] // 0)
        - (if $i > 0 then ($b[$i - 1].v[.] // 0) else 0 end)] | any(. > 0.5)) | $i] as $used
    | ([($used | min) - 1, 0] | max) as $lo | ([($used | max) + 1, ($b | length) - 1] | min) as $hi
    | (range($lo; $hi + 1) as $i
       | "# \($i - $lo)\t\(if $b[$i].le == infinite then "+Inf"
                         elif $b[$i].le >= 1 then "\($b[$i].le) s"
                         else "\($b[$i].le * 1000 * 1000 | round / 1000) ms" end)"),
      ($ts[] as $t | (range($lo; $hi + 1) as $i
        | (($b[$i].v[$t | tostring] // 0) - (if $i > 0 then ($b[$i - 1].v[$t | tostring] // 0) else 0 end)) as $c
        | "\($t)\t\($i - $lo)\t\(if $c > 0.5 then $c else "NaN" end)"), "")' >"$work/heatmap.dat"
hm_rows=$(grep -c '^# ' "$work/heatmap.dat")
hm_ytics=$(grep '^# ' "$work/heatmap.dat" | awk -F'\t' '{ sub(/^# /, "", $1); printf "%s\"≤ %s\" %s", (NR > 1 ? ", " : ""), $2, $1 }')

# Stat tiles: the Overview row.
instant 2 >"$work/enforced.tsv"
instant 3 >"$work/verified.tsv"
instant 4 >"$work/rps.tsv"
instant 5 >"$work/p99.tsv"
instant 6 >"$work/denials.tsv"
state_ytics=$(grep '^"' "$work/state.dat" | awk '{ gsub(/"/, ""); sub(/^[^ ]+ /, ""); printf "%s\"%s\" %d", (NR > 1 ? ", " : ""), $0, NR - 1 }')

# tile X W TITLE COLOR LINES...: a stat tile (gnuplot commands) at screen x, width w.
tile() {
  local x=$1 w=$2 t=$3 color=$4; shift 4
  local y0=0.855 y1=0.945 i=0 n=$#
  echo "set object rect from screen $x,$y0 to screen $(awk "BEGIN{print $x+$w}"),$y1 fc rgb '$color' fs solid 1.0 noborder behind"
  echo "set label \"$t\" at screen $(awk "BEGIN{print $x+0.008}"),$(awk "BEGIN{print $y1-0.014}") tc rgb '#ffffff' font ',11'"
  for line in "$@"; do
    local y
    y=$(awk "BEGIN{print $y0 + ($y1-$y0-0.02) * ($n - $i) / ($n + 1)}")
    # The size that fits the tile's width (a character is about 0.75 of the size, in pixels).
    local size
    size=$(awk -v w="$w" -v len="${#line}" -v max="$([ "$n" -gt 1 ] && echo 14 || echo 20)" \
      'BEGIN { s = int(w * 1600 / (len * 0.75 + 1)); print (s < max ? s : max) }')
    echo "set label \"$line\" at screen $(awk "BEGIN{print $x+$w/2}"),$y center tc rgb '#ffffff' font ',$size'"
    i=$((i + 1))
  done
}
policy_tile() {  # policy_tile X W TITLE FILE YES NO
  local lines=() color='#37872d'
  while IFS=$'\t' read -r who v; do
    who=${who##* }
    if [ "$v" = 1 ]; then lines+=("$who: $5"); else lines+=("$who: $6"); color='#c4162a'; fi
  done <"$4"
  tile "$1" "$2" "$3" "$color" "${lines[@]}"
}
{
  policy_tile 0.010 0.235 "$(title 2)" "$work/enforced.tsv" ENFORCED "NOT ENFORCED"
  policy_tile 0.250 0.235 "$(title 3)" "$work/verified.tsv" VERIFIED FAILED
  tile 0.490 0.160 "$(title 4)" '#1f60c4' "$(awk -F'\t' '{ printf "%.1f req/s", $2 }' "$work/rps.tsv")"
  tile 0.655 0.160 "$(title 5)" '#1f60c4' "$(awk -F'\t' '{ printf "%.1f ms", $2 * 1000 }' "$work/p99.tsv")"
  den=$(awk -F'\t' '{ printf "%s%s %d", (NR > 1 ? ", " : ""), $1, $2 }' "$work/denials.tsv")
  tile 0.820 0.170 "$(title 6)" "$([ -n "$den" ] && echo '#e0752d' || echo '#37872d')" "${den:-0}"
} >"$work/tiles.gp"

# --- the picture ------------------------------------------------------------------------------
# Time ticks at round seconds: ~8 on a wide graph, ~5 on a narrow one.
nice_tick() { for t in 5 10 15 30 60 120 300 600 900 1800 3600 7200 21600 43200 86400; do
  [ "$t" -ge "$1" ] && { echo "$t"; return; }; done; echo 86400; }
tick_wide=$(nice_tick $((range / 8))); tick_narrow=$(nice_tick $((range / 6)))
xfmt=$([ "$range" -le 900 ] && echo '%H:%M:%S' || echo '%H:%M')
span=$(awk "BEGIN { m = $range / 60; printf(m == int(m) ? \"%d min\" : \"%.1f min\", m) }")
cat >"$work/plot.gp" <<GP
set terminal pngcairo size 1600,1000 background rgb '#111217' font 'DejaVu Sans,10' noenhanced
set output '$out'
set datafile separator "\t"
set datafile missing "NaN"
fg = '#ccccdc'; grid = '#2c3235'
set border 3 lc rgb grid
set tics textcolor rgb fg nomirror
set key textcolor rgb fg top left Left reverse horizontal samplen 1.5 spacing 1 noautotitle
set grid lc rgb grid
set xdata time; set timefmt "%s"; set format x "$xfmt"
set xrange ["$start":"$end"]
set title textcolor rgb fg font ',12'
set multiplot
set label 1 "tunnelguard — $span of demo traffic, instance $instance (rendered from Prometheus, not a screenshot)" at screen 0.01,0.975 tc rgb fg font ',13'
load '$work/tiles.gp'
set size 0.1,0.1; set origin 0,0; set margins 0,0,0,0; unset border; unset tics; unset key
plot [0:1][0:1] NaN
unset object; unset label
set border 3 lc rgb grid; set tics textcolor rgb fg nomirror; set key
set xtics; set ytics
set lmargin 10; set rmargin 3; set tmargin 2.2; set bmargin 2
# headroom above the lines for the legend, as Grafana's legend below the graph would give
set offsets 0, 0, graph 0.3, 0
array colors[8] = ['#73bf69', '#f2cc0c', '#f2495c', '#8ab8ff', '#ff9830', '#b877d9', '#5794f2', '#fade2a']

# row 1: request latency quantiles | requests/s
set size 0.6,0.29; set origin 0,0.55
set title "$(title 8)"
set xtics $tick_wide
set logscale y; set format y "%g ms"; set offsets 0, 0, 0, 0
plot for [i=0:$n_lat-1] '$work/latency.dat' index i using 1:(\$2*1000) with lines lw 2 lc rgb colors[i % 8 + 1] title columnheader(1)
unset logscale y; set format y "%g"; set offsets 0, 0, graph 0.3, 0
set xtics $tick_narrow
set size 0.4,0.29; set origin 0.6,0.55
set title "$(title 14) (req/s)"
set yrange [0:*]
plot for [i=0:$n_rps-1] '$work/rps.dat' index i using 1:2 with lines lw 2 lc rgb colors[i % 8 + 4] title columnheader(1)
set yrange [*:*]

# row 2: latency heatmap | denials by policy and detail
set size 0.6,0.29; set origin 0,0.26
set title "$(title 10) (requests per ${hm_step} s in each bucket)"
set xtics $tick_wide
set palette defined (0 '#3b1e6b', 0.35 '#c2366b', 0.7 '#f58c3c', 1 '#fbe89c')
set logscale cb; set cbtics textcolor rgb fg; set colorbox user origin 0.575,0.29 size 0.008,0.22
set ytics (${hm_ytics}) font ',8'
set yrange [-0.5:$hm_rows-0.5]
set offsets 0, 0, 0, 0
unset key
plot '$work/heatmap.dat' using 1:2:($hm_step/2.0):(0.5):3 with boxxy fs solid 1.0 noborder lc palette notitle
set ytics autofreq font ''; set yrange [*:*]; unset logscale cb; unset colorbox; set key
set offsets 0, 0, graph 0.3, 0
set size 0.4,0.29; set origin 0.6,0.26
set title "$(title 21) (/s)"
set xtics $tick_narrow
set yrange [0:*]
plot for [i=0:$n_den-1] '$work/denials.dat' index i using 1:2 with lines lw 2 lc rgb colors[(i + 2) % 8 + 1] title columnheader(1)
set yrange [*:*]

# row 3: enforced and verified over time (state timeline) | connections
set size 0.6,0.25; set origin 0,0.0
set title "$(title 20) (green: yes, red: NO)"
set xtics $tick_wide
set ytics (${state_ytics}) font ',9'
set yrange [-0.6:$n_state-0.4]
set offsets 0, 0, 0, 0
set lmargin 28
unset key; unset grid
plot for [i=0:$n_state-1] '$work/state.dat' index i using 1:(i):($step/2.0 + 0.3):(0.38):(column(2) > 0.5 ? 0x73bf69 : 0xf2495c) with boxxy fs solid 0.85 noborder lc rgb variable notitle
set lmargin 10; set grid; set key; set ytics autofreq font ''; set yrange [*:*]
set offsets 0, 0, graph 0.3, 0
set size 0.4,0.25; set origin 0.6,0.0
set title "$(title 15)"
set xtics $tick_narrow
set yrange [0:*]
plot for [i=0:$n_con-1] '$work/connections.dat' index i using 1:2 with lines lw 2 lc rgb colors[(i + 3) % 8 + 1] title columnheader(1)
unset multiplot
GP
gnuplot "$work/plot.gp"
echo "render-dashboard-picture: wrote $out ($(stat -c %s "$out") bytes, ${span} from $prom)"
