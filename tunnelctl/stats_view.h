// How tunnelctl shows GetStats: a table, JSON in the schema of `tunnelguard measure --json`
// (docs/json-schema.md) plus `policies[]`, and a text histogram in the style of BCC's tools.
#ifndef TUNNELGUARD_TUNNELCTL_STATS_VIEW_H_
#define TUNNELGUARD_TUNNELCTL_STATS_VIEW_H_

#include <nlohmann/json.hpp>
#include <string>

#include "agent/latency/snapshot.h"
#include "tunnelguard/v1/agent.pb.h"

namespace tg::ctl {

// The agent's kernel histograms and counters, rebuilt bucket for bucket from the response, so
// quantiles and buckets are computed by the same code as the agent's own faces.
LatencySnapshot SnapshotFromProto(const tunnelguard::v1::GetStatsResponse& r);

nlohmann::json StatsJson(const tunnelguard::v1::GetStatsResponse& r);
// One policy's decisions by action, as `status --json` and `stats --json` print them.
nlohmann::json DecisionsJson(const tunnelguard::v1::Decisions& d);
std::string StatsTable(const tunnelguard::v1::GetStatsResponse& r);
// Request latency per upstream as log2 buckets in microseconds with a bar of stars.
std::string HistogramText(const tunnelguard::v1::GetStatsResponse& r);

}  // namespace tg::ctl

#endif  // TUNNELGUARD_TUNNELCTL_STATS_VIEW_H_
