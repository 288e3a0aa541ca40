#include "exporter/bpf_stats_collector.h"

#include <bpf/bpf.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "exporter/family_builder.h"

namespace tg::exporter {
namespace {

bool Ours(const char* name) { return std::strncmp(name, "tg_", 3) == 0; }

// Keys in a hash-like map, counted by walking it (bounded by max_entries); arrays are always
// full; other map types (sk_storage: per socket; ring buffers) have no countable keys.
std::optional<uint64_t> CountEntries(int fd, const bpf_map_info& info) {
  switch (info.type) {
    case BPF_MAP_TYPE_HASH:
    case BPF_MAP_TYPE_LRU_HASH:
    case BPF_MAP_TYPE_PERCPU_HASH:
    case BPF_MAP_TYPE_LRU_PERCPU_HASH:
      break;
    case BPF_MAP_TYPE_ARRAY:
    case BPF_MAP_TYPE_PERCPU_ARRAY:
      return info.max_entries;
    default:
      return std::nullopt;
  }
  std::vector<char> key(info.key_size), next(info.key_size);
  uint64_t n = 0;
  const void* prev = nullptr;
  while (n <= info.max_entries && bpf_map_get_next_key(fd, prev, next.data()) == 0) {
    ++n;
    key.swap(next);
    prev = key.data();
  }
  return n;
}

// name -> (runs, run time ns), or (entries, capacity): objects of the same name added up.
using Totals = std::map<std::string, std::pair<uint64_t, uint64_t>>;

// Programs of the same name are added up (one per hook, whichever mechanism holds them); the
// ids of the maps they use are collected into `map_ids` (a shared map is counted once).
Totals SumPrograms(const std::vector<uint32_t>& program_ids, std::set<uint32_t>& map_ids) {
  Totals progs;
  for (uint32_t id : program_ids) {
    UniqueFd fd(bpf_prog_get_fd_by_id(id));
    if (!fd.valid()) continue;  // gone since it was listed (detached in between)
    std::vector<uint32_t> ids(64);
    bpf_prog_info info{};
    info.nr_map_ids = static_cast<uint32_t>(ids.size());
    info.map_ids = reinterpret_cast<uintptr_t>(ids.data());
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) continue;
    auto& p = progs[info.name];
    p.first += info.run_cnt;
    p.second += info.run_time_ns;
    ids.resize(std::min<size_t>(info.nr_map_ids, ids.size()));
    map_ids.insert(ids.begin(), ids.end());
  }
  return progs;
}

Totals SumMaps(const std::set<uint32_t>& map_ids) {
  Totals maps;
  for (uint32_t id : map_ids) {
    UniqueFd fd(bpf_map_get_fd_by_id(id));
    if (!fd.valid()) continue;
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    // .rodata/.bss of the objects are programs' maps too; only the named tg_* maps are ours.
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0 || !Ours(info.name)) continue;
    // Maps without countable keys (sk_storage: per socket, max_entries 0) are left out rather
    // than exported as 0 of 0, which a fill ratio turns into NaN.
    const auto n = CountEntries(fd.get(), info);
    if (!n) continue;
    auto& m = maps[info.name];
    m.first += *n;
    m.second += info.max_entries;
  }
  return maps;
}

}  // namespace

std::vector<prometheus::MetricFamily> BpfStatsCollector::Collect() const {
  using prometheus::MetricType;
  auto runs = NewFamily("tunnelguard_bpf_program_runs_total",
                        "Runs of each tunnelguard BPF program (counted while BPF stats are on).",
                        MetricType::Counter);
  auto run_time = NewFamily("tunnelguard_bpf_program_run_time_seconds_total",
                            "CPU time spent in each tunnelguard BPF program (while BPF stats are "
                            "on).",
                            MetricType::Counter);
  auto entries = NewFamily("tunnelguard_bpf_map_entries",
                           "Entries in each tunnelguard BPF map (hash maps are walked; arrays "
                           "are full).",
                           MetricType::Gauge);
  auto capacity = NewFamily("tunnelguard_bpf_map_max_entries",
                            "Capacity of each tunnelguard BPF map.", MetricType::Gauge);

  std::set<uint32_t> map_ids;
  for (const auto& [name, p] : SumPrograms(program_ids_(), map_ids)) {
    AddCounter(runs, {{"program", name}}, static_cast<double>(p.first));
    AddCounter(run_time, {{"program", name}}, static_cast<double>(p.second) / 1e9);
  }
  for (const auto& [name, m] : SumMaps(map_ids)) {
    AddGauge(entries, {{"map", name}}, static_cast<double>(m.first));
    AddGauge(capacity, {{"map", name}}, static_cast<double>(m.second));
  }
  return {runs, run_time, entries, capacity};
}

Result<UniqueFd> EnableBpfStats() {
  UniqueFd fd(bpf_enable_stats(BPF_STATS_RUN_TIME));
  if (!fd.valid()) return FromLibbpf(-errno, "cannot turn on BPF run-time statistics");
  return fd;
}

}  // namespace tg::exporter
