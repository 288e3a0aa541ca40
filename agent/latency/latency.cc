#include "agent/latency/latency.h"

#include <bpf/bpf.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>

#include "agent/base/log.h"
#include "agent/base/unique_fd.h"
#include "bpf/latency.h"
#include "latency.skel.h"

namespace tg {

// The ABI is plain __u64s: the layout the kernel writes is the layout we read.
static_assert(sizeof(tg_lat_hist) == (3 + TG_LAT_BUCKETS) * sizeof(uint64_t));
static_assert(offsetof(tg_lat_hist, buckets) == 3 * sizeof(uint64_t));
static_assert(sizeof(tg_lat_counters) == 15 * sizeof(uint64_t));
static_assert(sizeof(tg_lat_addr) == 24);

template <>
void SkeletonDeleter<latency>::operator()(latency* skel) const {
  latency__destroy(skel);
}

namespace {

// A per-CPU map value is one slot per possible CPU, each rounded up to 8 bytes.
template <typename T>
Result<std::vector<T>> ReadPerCpu(const bpf_map* map, uint32_t key) {
  const int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return FromLibbpf(ncpu, "cannot count possible CPUs");
  static_assert(sizeof(T) % 8 == 0);
  std::vector<T> slots(static_cast<size_t>(ncpu));
  if (bpf_map_lookup_elem(bpf_map__fd(map), &key, slots.data()) != 0) {
    return FromErrno(errno, std::string("cannot read BPF map ") + bpf_map__name(map));
  }
  return slots;
}

FineHistogram SumHist(const std::vector<tg_lat_hist>& slots) {
  FineHistogram h;
  h.buckets.assign(TG_LAT_BUCKETS, 0);
  for (const auto& s : slots) {
    h.count += s.count;
    h.sum_ns += s.sum_ns;
    h.max_ns = std::max<uint64_t>(h.max_ns, s.max_ns);
    for (size_t i = 0; i < TG_LAT_BUCKETS; ++i) h.buckets[i] += s.buckets[i];
  }
  return h;
}

tg_lat_addr KeyOf(const UpstreamAddress& a) {
  tg_lat_addr key{};
  key.family = static_cast<uint32_t>(a.family);
  key.port = a.port;
  std::memcpy(key.addr, a.addr.data(), a.family == AF_INET ? 4 : 16);
  return key;
}

}  // namespace

Status ProbeFlowCensus() {
  Skeleton<latency> skel(latency__open());
  if (!skel) return FromLibbpf(-errno, "cannot open the latency BPF object");
  bpf_object* obj = skel->obj;
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, obj) {
    bpf_program__set_autoload(prog, prog == skel->progs.tg_lat_flows_it);
  }
  if (const int err = latency__load(skel.get()); err != 0) {
    Error e = FromLibbpf(err, "kernel refused the flow-census iterator (iter/bpf_sk_storage_map)");
    e.kind = ErrorKind::kUnsupported;
    return e;
  }
  return Status::Ok();
}

Result<LatencyProbe> LatencyProbe::Load(const std::vector<Upstream>& configured,
                                        const LatencyOptions& options) {
  // One slot per address: a name's addresses (web on 127.0.0.1:80 and [::1]:80) are counted
  // apart, so every series and row names one address, the same on every host of a fleet.
  const std::vector<Upstream> upstreams = PerAddress(configured);
  if (upstreams.empty() || upstreams.size() > TG_LAT_MAX_UPSTREAMS) {
    return MakeError(
        ErrorKind::kInvalidArgument,
        "latency needs 1.." + std::to_string(TG_LAT_MAX_UPSTREAMS) + " upstream addresses");
  }
  LatencyProbe probe;
  probe.upstreams_ = upstreams;
  probe.skel_.reset(latency__open());
  if (!probe.skel_) return FromLibbpf(-errno, "cannot open the latency BPF object");
  bpf_program__set_autoload(probe.skel_->progs.tg_lat_flows_it, options.flow_census);
  // Per-CPU histograms are ~9 KB per upstream and kind on every CPU: size the maps to the
  // upstreams we have, not to the maximum (16 upstreams on 64 CPUs would be 18 MB).
  const auto n = static_cast<uint32_t>(upstreams.size());
  if (bpf_map__set_max_entries(probe.skel_->maps.tg_lat_hists, n * TG_LAT_KINDS) != 0 ||
      bpf_map__set_max_entries(probe.skel_->maps.tg_lat_ctrs, n) != 0) {
    return FromLibbpf(-errno, "cannot size the latency maps");
  }
  if (const int err = latency__load(probe.skel_.get()); err != 0) {
    Error e = FromLibbpf(err, "kernel refused the latency programs (sockops, cgroup_skb)");
    if (e.kind == ErrorKind::kInternal) e.kind = ErrorKind::kUnsupported;
    return e;
  }
  const int up_fd = bpf_map__fd(probe.skel_->maps.tg_lat_up);
  for (uint32_t i = 0; i < upstreams.size(); ++i) {
    for (const auto& a : upstreams[i].addresses) {
      const tg_lat_addr key = KeyOf(a);
      if (bpf_map_update_elem(up_fd, &key, &i, BPF_NOEXIST) != 0) {
        return FromErrno(errno, "cannot add upstream " + a.text);
      }
    }
  }
  return probe;
}

Status LatencyProbe::Attach(int cgroup_fd) {
  // Build all three links before replacing the old ones: a failure leaves what was attached.
  BpfLink sockops(bpf_program__attach_cgroup(skel_->progs.tg_lat_sockops, cgroup_fd));
  if (!sockops) return FromLibbpf(-errno, "cannot attach latency sockops to the cgroup");
  BpfLink egress(bpf_program__attach_cgroup(skel_->progs.tg_lat_egress, cgroup_fd));
  if (!egress) return FromLibbpf(-errno, "cannot attach latency cgroup_skb/egress");
  BpfLink ingress(bpf_program__attach_cgroup(skel_->progs.tg_lat_ingress, cgroup_fd));
  if (!ingress) return FromLibbpf(-errno, "cannot attach latency cgroup_skb/ingress");
  sockops_ = std::move(sockops);
  egress_ = std::move(egress);
  ingress_ = std::move(ingress);
  return Status::Ok();
}

std::vector<uint32_t> LatencyProbe::ProgramIds() const {
  std::vector<uint32_t> ids;
  for (const bpf_program* p :
       {skel_->progs.tg_lat_sockops, skel_->progs.tg_lat_egress, skel_->progs.tg_lat_ingress}) {
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &len) == 0) ids.push_back(info.id);
  }
  return ids;
}

void LatencyProbe::Detach() {
  ingress_.reset();
  egress_.reset();
  sockops_.reset();
}

Result<LatencySnapshot> LatencyProbe::Snapshot() const {
  LatencySnapshot snap;
  for (uint32_t i = 0; i < upstreams_.size(); ++i) {
    UpstreamStats s;
    s.name = upstreams_[i].name;
    for (const auto& a : upstreams_[i].addresses) s.addresses.push_back(a.text);
    auto ctrs = ReadPerCpu<tg_lat_counters>(skel_->maps.tg_lat_ctrs, i);
    if (!ctrs.ok()) return ctrs.error();
    for (const auto& c : *ctrs) {
      s.requests += c.requests;
      s.connections += c.conn_opened;
      s.connections_adopted += c.conn_adopted;
      s.connections_closed += c.conn_closed;
      s.connect_attempts += c.flows_tracked;
      s.flows_closed += c.flows_closed;
      s.refused += c.fail_refused;
      s.timeout += c.fail_timeout;
      s.reset += c.fail_reset;
      s.aborted += c.fail_other;
      s.bytes_sent += c.bytes_sent;
      s.bytes_received += c.bytes_received;
      s.retransmits += c.retransmits;
      s.tls_handshake_turns += c.handshake_turns;
      s.tls_h2_turns += c.tls_h2_turns;
    }
    auto req = ReadPerCpu<tg_lat_hist>(skel_->maps.tg_lat_hists, i * TG_LAT_KINDS + TG_LAT_REQUEST);
    if (!req.ok()) return req.error();
    s.request_latency = SumHist(*req);
    auto con = ReadPerCpu<tg_lat_hist>(skel_->maps.tg_lat_hists, i * TG_LAT_KINDS + TG_LAT_CONNECT);
    if (!con.ok()) return con.error();
    s.connect_latency = SumHist(*con);
    snap.upstreams.push_back(std::move(s));
  }
  return snap;
}

Result<uint64_t> LatencyProbe::FlowCount() const {
  if (!bpf_program__autoload(skel_->progs.tg_lat_flows_it)) {
    return MakeError(ErrorKind::kInvalidArgument, "FlowCount needs LatencyOptions::flow_census");
  }
  union bpf_iter_link_info info {};
  info.map.map_fd = static_cast<uint32_t>(bpf_map__fd(skel_->maps.tg_lat_flows));
  DECLARE_LIBBPF_OPTS(bpf_iter_attach_opts, opts, .link_info = &info,
                      .link_info_len = sizeof(info));
  BpfLink link(bpf_program__attach_iter(skel_->progs.tg_lat_flows_it, &opts));
  if (!link) return FromLibbpf(-errno, "cannot attach the flow-state iterator");
  skel_->bss->tg_lat_flow_count = 0;
  UniqueFd iter(bpf_iter_create(bpf_link__fd(link.get())));
  if (!iter.valid()) return FromErrno(errno, "cannot create the flow-state iterator");
  char buf[64];
  while (true) {
    const ssize_t n = ::read(iter.get(), buf, sizeof(buf));
    if (n == 0) break;
    if (n < 0 && errno != EINTR) return FromErrno(errno, "cannot walk the flow-state map");
  }
  return static_cast<uint64_t>(skel_->bss->tg_lat_flow_count);
}

}  // namespace tg
