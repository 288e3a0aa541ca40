/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * ABI of latency.bpf.c shared with the agent (agent/latency.*): the upstream table, the
 * per-CPU counters and the log-linear histogram layout. Plain __u32/__u64 only; the C++ side
 * static_asserts the sizes. Included by C (BPF) and C++ (agent).
 */
#ifndef TUNNELGUARD_BPF_LATENCY_H_
#define TUNNELGUARD_BPF_LATENCY_H_

#ifdef __cplusplus
#include <linux/types.h>
#define TG_LAT_U32(x) static_cast<__u32>(x)
#else
#define TG_LAT_U32(x) ((__u32)(x))
#endif

/* At most this many upstream addresses, each measured on its own (an upstream name with two
 * addresses is two of them: the agent's series carry one address each). */
#define TG_LAT_MAX_UPSTREAMS 64
/* At most this many upstream addresses in total (the lookup table's capacity). */
#define TG_LAT_MAX_ADDRS 64

/*
 * Histogram layout, in nanoseconds (HdrHistogram-style log-linear):
 *   values below 2^TG_LAT_SUB_BITS ns: one bucket per nanosecond;
 *   above: each power of two [2^k, 2^(k+1)) is split into 2^TG_LAT_SUB_BITS equal buckets.
 * With 32 sub-buckets a bucket is at most 1/32 of its lower bound wide, so a quantile read at
 * a bucket's midpoint is within 1/64 (1.6 %) of any value in it: inside the 3 % budget with
 * room to spare. Values at or above 2^TG_LAT_MAX_LOG2 ns (~275 s) land in the last bucket.
 */
#define TG_LAT_SUB_BITS 5
#define TG_LAT_SUB_BUCKETS (1u << TG_LAT_SUB_BITS)
#define TG_LAT_MAX_LOG2 38
#define TG_LAT_BUCKETS ((TG_LAT_MAX_LOG2 - TG_LAT_SUB_BITS + 2) * TG_LAT_SUB_BUCKETS)

/* Which histogram of an upstream: index = upstream * TG_LAT_KINDS + kind. */
enum tg_lat_kind {
  TG_LAT_REQUEST = 0, /* first byte of a request sent -> first byte of its response */
  TG_LAT_CONNECT = 1, /* SYN sent -> connection established */
  TG_LAT_KINDS = 2,
};

struct tg_lat_hist {
  __u64 count;
  __u64 sum_ns;
  __u64 max_ns;
  __u64 buckets[TG_LAT_BUCKETS];
};

/* Per-CPU, per-upstream counters (summed over CPUs by the agent). */
struct tg_lat_counters {
  __u64 requests;         /* answered requests (== request histogram count) */
  __u64 conn_opened;      /* connections established */
  __u64 conn_closed;      /* established connections that reached TCP_CLOSE */
  __u64 fail_refused;     /* connect failed: ECONNREFUSED (RST to the SYN) */
  __u64 fail_timeout;     /* connect or established connection timed out: ETIMEDOUT */
  __u64 fail_reset;       /* established connection reset by the peer: ECONNRESET/EPIPE */
  __u64 fail_other;       /* connect aborted without an error (closed while in SYN_SENT) */
  __u64 bytes_sent;       /* TCP payload bytes sent (as seen on the wire: incl. retransmits) */
  __u64 bytes_received;   /* TCP payload bytes received */
  __u64 retransmits;      /* retransmitted segments (SYNs included) */
  __u64 handshake_turns;  /* TLS handshake turns seen (not requests) */
  __u64 flows_tracked;    /* sockets that got flow state (connect attempts to an upstream) */
  __u64 flows_closed;     /* of those, sockets that reached TCP_CLOSE */
  __u64 conn_adopted;     /* connections already open at attach, picked up on their first
                             sent packet (not in conn_opened; their close is seen by FIN/RST) */
  __u64 tls_h2_turns;     /* answered turns on TLS connections that offered h2 (not requests:
                             encrypted HTTP/2 control records cannot be told from requests) */
};

/*
 * Upstream table key. Addresses are in network byte order; IPv4 (and IPv4-mapped IPv6) as
 * family 2 with the address in addr[0..3], IPv6 as family 10. Port in host byte order.
 */
struct tg_lat_addr {
  __u32 family;
  __u32 port;
  __u8 addr[16];
};

/*
 * Log-linear bucket index of a value in nanoseconds. Shared by the BPF program (which fills
 * the buckets) and the agent (whose unit tests check it against TgLatBucketLower()).
 */
static inline __u32 tg_lat_log2(__u64 v) {
  __u32 r = 0, s;
  s = (v > 0xFFFFFFFFull) << 5;
  v >>= s;
  r |= s;
  s = (v > 0xFFFFull) << 4;
  v >>= s;
  r |= s;
  s = (v > 0xFFull) << 3;
  v >>= s;
  r |= s;
  s = (v > 0xFull) << 2;
  v >>= s;
  r |= s;
  s = (v > 0x3ull) << 1;
  v >>= s;
  r |= s;
  r |= TG_LAT_U32(v >> 1);
  return r;
}

static inline __u32 tg_lat_bucket(__u64 ns) {
  __u32 k, sub, idx;
  if (ns < TG_LAT_SUB_BUCKETS) return TG_LAT_U32(ns);
  k = tg_lat_log2(ns);
  if (k > TG_LAT_MAX_LOG2) return TG_LAT_BUCKETS - 1;
  sub = TG_LAT_U32(ns >> (k - TG_LAT_SUB_BITS)) & (TG_LAT_SUB_BUCKETS - 1);
  idx = (k - TG_LAT_SUB_BITS + 1) * TG_LAT_SUB_BUCKETS + sub;
  return idx < TG_LAT_BUCKETS ? idx : TG_LAT_BUCKETS - 1;
}

#endif /* TUNNELGUARD_BPF_LATENCY_H_ */
