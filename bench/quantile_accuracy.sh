#!/usr/bin/env bash
# Grafana's quantiles against the agent's own: held-out latency shapes recorded in the kernel's
# fine histogram layout (tg-quantile-shapes), exported as classic Prometheus histograms at
# several bucket densities, scraped by a real Prometheus (Debian's), and queried with
# histogram_quantile — the dashboard's function. Prints shape × p50/p90/p99: the agent's figure
# (what `tunnelctl stats` prints), PromQL's per density, the error in %, and the series each
# histogram costs. The same shapes as native histograms (the agent's protobuf exposition, as a
# Prometheus started with --enable-feature=native-histograms scrapes it) are the column
# "native". No root needed.
#
#   bench/quantile_accuracy.sh [--build DIR] [--samples N]
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$REPO/build
SAMPLES=200000
while [ $# -gt 0 ]; do
  case $1 in
    --build) BUILD=$2; shift 2 ;;
    --samples) SAMPLES=$2; shift 2 ;;
    *) echo "usage: $0 [--build DIR] [--samples N]" >&2; exit 2 ;;
  esac
done
TOOL=$BUILD/tests/tools/tg-quantile-shapes
[ -x "$TOOL" ] || { echo "quantile_accuracy: $TOOL missing: cmake --build $BUILD" >&2; exit 1; }
command -v prometheus >/dev/null || { echo "quantile_accuracy: needs prometheus (tools/install-deps.sh)" >&2; exit 1; }

TMP=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$TMP"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

mkdir -p "$TMP/www"
"$TOOL" --exposition "$TMP/www/metrics" --protobuf "$TMP/www/native" \
  --quantiles "$TMP/kernel.txt" --samples "$SAMPLES"
WEB=$(free_port)
# /metrics: the text page; /native: the protobuf page, with the content type the agent sends.
cat >"$TMP/serve.py" <<'EOF'
import http.server, sys
root, port = sys.argv[1], int(sys.argv[2])
types = {'/metrics': 'text/plain; version=0.0.4',
         '/native': 'application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; '
                    'encoding=delimited'}
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = open(root + self.path, 'rb').read()
        self.send_response(200)
        self.send_header('Content-Type', types[self.path])
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(('127.0.0.1', port), H).serve_forever()
EOF
python3 "$TMP/serve.py" "$TMP/www" "$WEB" >"$TMP/http.log" 2>&1 &
PIDS+=($!)
PROM=$(free_port)
cat >"$TMP/prometheus.yml" <<EOF
global: {scrape_interval: 1s}
scrape_configs:
  - job_name: shapes
    static_configs: [{targets: ['127.0.0.1:$WEB']}]
  - job_name: native
    metrics_path: /native
    static_configs: [{targets: ['127.0.0.1:$WEB']}]
EOF
prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/tsdb" \
  --enable-feature=native-histograms --web.listen-address="127.0.0.1:$PROM" >"$TMP/prometheus.log" 2>&1 &
PIDS+=($!)

query() { curl -sf --get "http://127.0.0.1:$PROM/api/v1/query" --data-urlencode "query=$1"; }
sleep 3
for _ in $(seq 60); do
  [ "$(query "count(tg_shape_seconds_count) + count(tg_shape_seconds)" 2>/dev/null | jq -r ".data.result[0].value[1] // 0" || true)" != 0 ] && break
  sleep 0.5
done
for q in 0.5 0.9 0.99; do
  for selector in tg_shape_seconds_bucket 'tg_shape_seconds{job="native"}'; do
    query "histogram_quantile($q, $selector)" |
      jq -r --arg q "$q" '.data.result[] | "\(.metric.shape) \($q) \(.metric.density) \(.value[1])"'
  done
done >"$TMP/promql.txt"
[ -s "$TMP/promql.txt" ] || { echo "quantile_accuracy: Prometheus returned nothing" >&2; cat "$TMP/prometheus.log" >&2; exit 1; }

python3 - "$TMP/kernel.txt" "$TMP/promql.txt" <<'EOF'
import sys
kernel, series, promql = {}, {}, {}
for line in open(sys.argv[1]):
    f = line.split()
    if f[0] == '#':
        series[f[3]] = f[4]
    else:
        kernel[(f[0], float(f[1]))] = float(f[2])
for line in open(sys.argv[2]):
    shape, q, d, v = line.split()
    promql[(shape, float(q), d)] = float(v)
densities = sorted(series, key=lambda d: 1e9 if d == 'native' else int(d))
name = lambda d: 'default' if d == '0' else 'native' if d == 'native' else f'{d}/decade'
print('series per histogram (classic: buckets incl. +Inf, +2 for _sum and _count; native: '
      'one): ' +
      ', '.join(f'{name(d)} {series[d]}' for d in densities))
head = f"{'shape':<19} {'q':>4} {'agent':>10}" + ''.join(f" {name(d):>20}" for d in densities)
print(head)
worst = {d: 0.0 for d in densities}
for (shape, q), k in kernel.items():
    row = f"{shape:<19} {q:>4} {k*1e3:>8.4f}ms"
    for d in densities:
        v = promql.get((shape, q, d), float('nan'))
        err = (v - k) / k * 100
        worst[d] = max(worst[d], abs(err))
        row += f" {v*1e3:>10.4f}ms {err:>+6.1f}%"
    print(row)
print('worst |error|: ' + ', '.join(f'{name(d)} {worst[d]:.1f} %' for d in densities))
EOF
