// Structural checks of a Grafana dashboard that its schema types cannot express:
// unique panel ids; panels inside the 24-column grid and not overlapping; every query panel on
// the ${datasource} variable, every target with a refId and an expr that filters on
// instance=~"$instance" (so one dashboard serves one host or a fleet), and each selector of a
// per-tunnel series (tunnelguard_upstream_*, _policy_*, _events_*) on unit=~"$unit" (one
// tunnel of an agent guarding several); the variables that make that work; every metric named
// is one tunnelguard (or Traefik) exports.
// Usage: node structure.mjs DASHBOARD.json KNOWN_METRICS.txt   (exit 1 + reasons on failure)
import { readFileSync } from 'node:fs';

const [, , input, known] = process.argv;
const d = JSON.parse(readFileSync(input, 'utf8'));
const knownMetrics = new Set(readFileSync(known, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')));
const errors = [];
const flat = (d.panels ?? []).flatMap((p) => (p.type === 'row' ? [p, ...(p.panels ?? [])] : [p]));

const ids = flat.map((p) => p.id);
if (new Set(ids).size !== ids.length) errors.push(`duplicate panel ids: ${ids}`);

const boxes = [];
for (const p of flat) {
  const g = p.gridPos;
  if (!g || ![g.x, g.y, g.w, g.h].every(Number.isInteger)) { errors.push(`panel ${p.id}: no integer gridPos`); continue; }
  if (g.x < 0 || g.w < 1 || g.x + g.w > 24) errors.push(`panel ${p.id} '${p.title}': outside the 24-column grid`);
  for (const b of boxes) {
    if (g.x < b.x + b.w && b.x < g.x + g.w && g.y < b.y + b.h && b.y < g.y + g.h) {
      errors.push(`panels ${b.id} and ${p.id} overlap`);
    }
  }
  boxes.push({ ...g, id: p.id });
}

const vars = Object.fromEntries((d.templating?.list ?? []).map((v) => [v.name, v]));
if (vars.datasource?.type !== 'datasource' || vars.datasource?.query !== 'prometheus') errors.push('no datasource variable of type prometheus');
for (const name of ['instance', 'unit']) {
  const v = vars[name];
  if (!v?.multi || !v?.includeAll || v?.allValue !== '.*') errors.push(`${name} variable must be multi-value with All = .*`);
}

const metrics = new Set();
for (const p of flat) {
  if (p.type === 'row') continue;
  if (p.datasource?.uid !== '${datasource}') errors.push(`panel ${p.id} '${p.title}': datasource is not \${datasource}`);
  if (!p.targets?.length) errors.push(`panel ${p.id} '${p.title}': no queries`);
  for (const t of p.targets ?? []) {
    if (!t.refId || !t.expr) { errors.push(`panel ${p.id}: a target without refId or expr`); continue; }
    const selectors = t.expr.match(/[a-z_:]+\{[^}]*\}/g) ?? [];
    if (!selectors.length) errors.push(`panel ${p.id}: '${t.expr}' selects no metric with labels`);
    for (const s of selectors) {
      if (!s.includes('instance=~"$instance"')) errors.push(`panel ${p.id}: ${s} does not filter on instance=~"$instance"`);
      if (/^tunnelguard_(upstream|policy|events)_/.test(s) && !s.includes('unit=~"$unit"')) errors.push(`panel ${p.id}: ${s} does not filter on unit=~"$unit"`);
    }
    for (const m of t.expr.match(/\b(?:tunnelguard|traefik|cloudflared)_[a-z_]+/g) ?? []) metrics.add(m);
  }
}
// Per host where hosts would merge: a time series or table grouping by labels keeps instance.
for (const p of flat) {
  if (!['timeseries', 'state-timeline', 'table'].includes(p.type)) continue;
  for (const t of p.targets ?? []) {
    for (const g of t.expr?.matchAll(/\b(?:by|on) \(([^)]*)\)/g) ?? []) {
      if (!g[1].split(',').map((l) => l.trim()).includes('instance')) errors.push(`panel ${p.id} '${p.title}': '${g[0]}' merges hosts (add instance)`);
    }
  }
}
for (const a of d.annotations?.list ?? []) {
  if (a.builtIn) continue;
  if (a.datasource?.uid !== '${datasource}' || !a.target?.refId || !a.target?.expr) errors.push(`annotation '${a.name}': needs datasource \${datasource} and target.refId, target.expr`);
  else if (!a.target.expr.includes('instance=~"$instance"')) errors.push(`annotation '${a.name}' does not filter on instance=~"$instance"`);
  if (typeof a.titleFormat !== 'string' || typeof a.textFormat !== 'string') errors.push(`annotation '${a.name}': titleFormat and textFormat must be strings`);
}

for (const m of metrics) if (!knownMetrics.has(m)) errors.push(`unknown metric ${m} (not in ${known})`);

if (errors.length) {
  console.error(errors.join('\n'));
  process.exit(1);
}
console.log(`${flat.length} panels, ${metrics.size} metrics, structure ok`);
