// The JSON form of a latency snapshot: one schema for `measure --json`, `status --json` and
// the daemon's stats (documented in docs/json-schema.md; change both together).
#ifndef TUNNELGUARD_AGENT_LATENCY_JSON_H_
#define TUNNELGUARD_AGENT_LATENCY_JSON_H_

#include <nlohmann/json.hpp>

#include "agent/latency/snapshot.h"

namespace tg {

inline constexpr int kLatencySchemaVersion = 1;

// {"schema_version":1, "upstreams":[{...}, ...]}
nlohmann::json LatencyToJson(const LatencySnapshot& snapshot);

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_LATENCY_JSON_H_
