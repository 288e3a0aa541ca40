// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * latency: tunnel -> upstream (Traefik) connect and request latency, counted in the kernel.
 *
 * The three cgroup programs attach to the tunnel's cgroup, so they run only for sockets created by
 * tasks in it or its descendants, and their cost stays there (peers.md: the same programs with
 * the client outside the cgroup cost nothing measurable).
 *
 *   sockops               TCP_CONNECT_CB: a connect to a configured upstream gets flow state
 *                         (sk_storage: freed with the socket, so it cannot leak) and a start
 *                         time; ACTIVE_ESTABLISHED_CB: connect latency; STATE_CB (-> CLOSE):
 *                         closed / refused / timed out / reset, from sk_err; RETRANS_CB.
 *   cgroup_skb/egress     the first payload-carrying skb after a receive starts a "turn": a
 *                         request (or, on TLS, a handshake turn — see below). A connection
 *                         open before we attached is adopted on its first sent packet.
 *   cgroup_skb/ingress    the first payload-carrying skb of the response ends the request:
 *                         request latency = now - start of the turn.
 *
 * Turn-taking works without parsing HTTP and so works over TLS. A connection whose first sent
 * byte is 0x16 (a TLS handshake record) is a TLS connection; on it a turn is a request only if
 * it starts with an application-data record (0x17). A handshake turn (0x16 ClientHello,
 * 0x14/0x16 ChangeCipherSpec+Finished) becomes a request at its first later skb that starts
 * with 0x17: TLS clients flush each handshake flight in one write, so the request that a TLS
 * 1.3 (or resumed 1.2) client sends right behind its Finished starts a new skb.
 * docs/latency.md says exactly what is counted and where it is not (HTTP/2 multiplexing,
 * pipelining). A fourth program, an sk_storage iterator, only counts the map's entries.
 *
 * Hooks chosen for portability: sockops and cgroup_skb exist on every kernel we support
 * (4.17+; 6.1, 6.12, 7.x and this host's 6.18) and need no BPF trampoline, which this host
 * refuses. bpf_sk_storage_get works from both (5.2+), bpf_skc_to_tcp_sock from sockops (5.9+).
 */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "latency.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define TG_AF_INET 2
#define TG_AF_INET6 10
#define TG_ETH_P_IP 0x0800
#define TG_ETH_P_IPV6 0x86DD
#define TG_IPPROTO_TCP 6
#define TG_TCP_CLOSE 7
#define TG_ECONNRESET 104
#define TG_ETIMEDOUT 110
#define TG_ECONNREFUSED 111
#define TG_EPIPE 32

#define TG_TLS_HANDSHAKE 0x16
#define TG_TLS_APPDATA 0x17

enum tg_lat_phase {
  TG_PHASE_IDLE = 0,      /* nothing sent since the last receive */
  TG_PHASE_REQUEST = 1,   /* a request turn is open: waiting for the response's first byte */
  TG_PHASE_HANDSHAKE = 2, /* a TLS handshake turn is open */
};

/* Per-socket flow state; exists only for connections to a configured upstream. */
struct tg_lat_flow {
  __u64 t_start; /* connect start, then start of the open turn (ns, CLOCK_MONOTONIC) */
  __u32 upstream;
  __u8 phase;
  __u8 tls;
  __u8 classified; /* the first payload byte has been seen (tls is valid) */
  __u8 established;
  __u8 adopted; /* open before we attached: no sockops callbacks, close seen by FIN/RST */
  __u8 h2;      /* cleartext HTTP/2: turns open on new streams, end on their responses */
  __u8 tls_h2;  /* TLS whose ClientHello offers h2: turns are not requests (see below) */
  __u8 pad;
  __u32 h2_last_stream; /* the highest client stream id seen opening */
  __u32 h2_turn_stream; /* the stream whose response ends the open turn */
  __u32 pad2;
};

struct {
  __uint(type, BPF_MAP_TYPE_SK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct tg_lat_flow);
} tg_lat_flows SEC(".maps");

/* Address -> upstream index, filled by the agent before attaching. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, TG_LAT_MAX_ADDRS);
  __type(key, struct tg_lat_addr);
  __type(value, __u32);
} tg_lat_up SEC(".maps");

/* Per-CPU histograms and counters, by upstream index. The loader shrinks max_entries to the
 * configured upstreams before load (a histogram is ~9 KB per CPU); lookups past the end, such
 * as the "ignored" marker's index, return NULL. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, TG_LAT_MAX_UPSTREAMS * TG_LAT_KINDS);
  __type(key, __u32);
  __type(value, struct tg_lat_hist);
} tg_lat_hists SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, TG_LAT_MAX_UPSTREAMS);
  __type(key, __u32);
  __type(value, struct tg_lat_counters);
} tg_lat_ctrs SEC(".maps");

/* Per-CPU values written from more than one context are updated atomically: a softirq (egress
 * of an ACK-clocked send, sockops run from the receive path) can interrupt a program running in
 * process context on the same CPU, and the counts must be exact. */
#define TG_ADD(field, n) __sync_fetch_and_add(&(field), (n))

static __always_inline struct tg_lat_counters *counters(__u32 upstream) {
  return bpf_map_lookup_elem(&tg_lat_ctrs, &upstream);
}

static __always_inline struct tg_lat_hist *hist(__u32 upstream, __u32 kind) {
  __u32 key = upstream * TG_LAT_KINDS + kind;
  return bpf_map_lookup_elem(&tg_lat_hists, &key);
}

/* tg_lat_bucket() already clamps, but clang folds a repeated bound check away and the verifier
 * cannot follow the arithmetic: hide the index from the optimizer, then bound it right where it
 * is used. */
#define TG_BUCKET_OR_RETURN(b, ns)   \
  __u32 b = tg_lat_bucket(ns);       \
  asm volatile("" : "+r"(b));        \
  if (b >= TG_LAT_BUCKETS) return;

/* For histograms updated from any context (connect latency: sockops runs in process context
 * and in softirq). */
static __always_inline void record_atomic(__u32 upstream, __u32 kind, __u64 ns) {
  struct tg_lat_hist *h = hist(upstream, kind);
  if (!h) return;
  TG_BUCKET_OR_RETURN(b, ns);
  TG_ADD(h->buckets[b], 1);
  TG_ADD(h->count, 1);
  TG_ADD(h->sum_ns, ns);
  /* The maximum is best effort under a race between contexts on one CPU. */
  if (ns > h->max_ns) h->max_ns = ns;
}

/* For the request histogram, written only by the ingress program. cgroup_skb/ingress runs in
 * the receive softirq (or ksoftirqd, BH still disabled), and softirqs do not nest on a CPU, so
 * plain adds on this CPU's slot cannot lose an update and save the atomics' cost per request.
 * (A PREEMPT_RT kernel would break this assumption; Debian's default kernels are not RT.) */
static __always_inline void record_softirq(struct tg_lat_hist *h, __u64 ns) {
  TG_BUCKET_OR_RETURN(b, ns);
  h->buckets[b] += 1;
  h->count += 1;
  h->sum_ns += ns;
  if (ns > h->max_ns) h->max_ns = ns;
}

/* ---- sockops: connection lifecycle ---------------------------------------------------- */

static __always_inline int upstream_of(struct bpf_sock_ops *skops, __u32 *upstream) {
  struct tg_lat_addr key = {};
  key.port = bpf_ntohl(skops->remote_port) & 0xffff;
  if (skops->family == TG_AF_INET) {
    __u32 ip4 = skops->remote_ip4;
    key.family = TG_AF_INET;
    __builtin_memcpy(key.addr, &ip4, 4);
  } else if (skops->family == TG_AF_INET6) {
    __u32 w0 = skops->remote_ip6[0], w1 = skops->remote_ip6[1];
    __u32 w2 = skops->remote_ip6[2], w3 = skops->remote_ip6[3];
    if (w0 == 0 && w1 == 0 && w2 == bpf_htonl(0xffff)) {
      /* An IPv4-mapped address from a dual-stack socket is the IPv4 upstream. */
      key.family = TG_AF_INET;
      __builtin_memcpy(key.addr, &w3, 4);
    } else {
      key.family = TG_AF_INET6;
      __builtin_memcpy(key.addr, &w0, 4);
      __builtin_memcpy(key.addr + 4, &w1, 4);
      __builtin_memcpy(key.addr + 8, &w2, 4);
      __builtin_memcpy(key.addr + 12, &w3, 4);
    }
  } else {
    return -1;
  }
  __u32 *idx = bpf_map_lookup_elem(&tg_lat_up, &key);
  if (!idx || *idx >= TG_LAT_MAX_UPSTREAMS) return -1;
  *upstream = *idx;
  return 0;
}

static __always_inline void on_connect(struct bpf_sock_ops *skops) {
  struct bpf_sock *sk = skops->sk;
  __u32 upstream;
  if (!sk || upstream_of(skops, &upstream) != 0) return;
  struct tg_lat_flow *f = bpf_sk_storage_get(&tg_lat_flows, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
  if (!f) return;
  f->t_start = bpf_ktime_get_ns();
  f->upstream = upstream;
  f->phase = TG_PHASE_IDLE;
  f->tls = 0;
  f->classified = 0;
  f->established = 0;
  f->adopted = 0;
  f->h2 = 0;
  f->tls_h2 = 0;
  f->h2_last_stream = 0;
  f->h2_turn_stream = 0;
  /* Only flows to an upstream pay for state and retransmit callbacks. */
  bpf_sock_ops_cb_flags_set(skops, BPF_SOCK_OPS_STATE_CB_FLAG | BPF_SOCK_OPS_RETRANS_CB_FLAG);
  struct tg_lat_counters *c = counters(upstream);
  if (c) TG_ADD(c->flows_tracked, 1);
}

static __always_inline void on_established(struct bpf_sock_ops *skops) {
  struct bpf_sock *sk = skops->sk;
  if (!sk) return;
  struct tg_lat_flow *f = bpf_sk_storage_get(&tg_lat_flows, sk, 0, 0);
  if (!f) return;
  __u64 now = bpf_ktime_get_ns();
  record_atomic(f->upstream, TG_LAT_CONNECT, now - f->t_start);
  f->established = 1;
  struct tg_lat_counters *c = counters(f->upstream);
  if (c) TG_ADD(c->conn_opened, 1);
}

static __always_inline void on_close(struct bpf_sock_ops *skops) {
  struct bpf_sock *sk = skops->sk;
  if (!sk) return;
  struct tg_lat_flow *f = bpf_sk_storage_get(&tg_lat_flows, sk, 0, 0);
  if (!f) return;
  struct tg_lat_counters *c = counters(f->upstream);
  if (!c) return;
  /* tcp_reset() and tcp_write_err() store sk_err before tcp_done() moves to TCP_CLOSE. */
  int err = 0;
  struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
  if (tp) err = tp->inet_conn.icsk_inet.sk.sk_err;
  if (err == TG_ECONNREFUSED) {
    TG_ADD(c->fail_refused, 1);
  } else if (err == TG_ETIMEDOUT) {
    TG_ADD(c->fail_timeout, 1);
  } else if (err == TG_ECONNRESET || err == TG_EPIPE) {
    TG_ADD(c->fail_reset, 1);
  } else if (!f->established) {
    TG_ADD(c->fail_other, 1);
  }
  if (f->established) TG_ADD(c->conn_closed, 1);
  TG_ADD(c->flows_closed, 1);
  /* The flow is done; the storage goes with the socket. Clearing `established` makes a
   * (theoretical) second CLOSE callback harmless. */
  f->established = 0;
  f->upstream = TG_LAT_MAX_UPSTREAMS; /* no counters match: later events are ignored */
}

SEC("sockops")
int tg_lat_sockops(struct bpf_sock_ops *skops) {
  struct bpf_sock *sk;
  switch (skops->op) {
    case BPF_SOCK_OPS_TCP_CONNECT_CB:
      on_connect(skops);
      break;
    case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
      on_established(skops);
      break;
    case BPF_SOCK_OPS_STATE_CB:
      if (skops->args[1] == TG_TCP_CLOSE) on_close(skops);
      break;
    case BPF_SOCK_OPS_RETRANS_CB:
      /* args: first sequence number, segments, tcp_transmit_skb()'s result (0 = sent) */
      sk = skops->sk;
      if (skops->args[2] == 0 && sk) {
        struct tg_lat_flow *f = bpf_sk_storage_get(&tg_lat_flows, sk, 0, 0);
        struct tg_lat_counters *c = f ? counters(f->upstream) : 0;
        if (c) TG_ADD(c->retransmits, skops->args[1]);
      }
      break;
    default:
      break;
  }
  return 1;
}

/* ---- cgroup_skb: request turns -------------------------------------------------------- */

/* The TCP header of an skb that starts at the IP header. The headers are in the linear area on
 * both paths (built there on egress, pulled by tcp_v4/v6_rcv() before the ingress filter runs),
 * so direct packet access reads them without a helper call. */
struct tg_lat_pkt {
  struct tcphdr *th;
  int off; /* payload offset */
  int v6;
};

static __always_inline int parse(struct __sk_buff *skb, struct tg_lat_pkt *p) {
  void *data = (void *)(long)skb->data;
  void *end = (void *)(long)skb->data_end;
  __u32 l4;
  if (skb->protocol == bpf_htons(TG_ETH_P_IP)) {
    struct iphdr *ip = data;
    if ((void *)(ip + 1) > end || ip->protocol != TG_IPPROTO_TCP) return -1;
    l4 = ip->ihl * 4;
    p->v6 = 0;
  } else if (skb->protocol == bpf_htons(TG_ETH_P_IPV6)) {
    struct ipv6hdr *ip6 = data;
    if ((void *)(ip6 + 1) > end || ip6->nexthdr != TG_IPPROTO_TCP) return -1;
    l4 = sizeof(*ip6);
    p->v6 = 1;
  } else {
    return -1;
  }
  if (l4 > 60) return -1; /* bounds l4 for the verifier */
  struct tcphdr *th = data + l4;
  if ((void *)(th + 1) > end) return -1;
  p->th = th;
  p->off = (int)(l4 + th->doff * 4);
  return 0;
}

/* The skb's socket. bpf_sk_storage_get() takes any sock_common and returns NULL itself for a
 * request or timewait socket (sk_fullsock() inside the helper), so no bpf_sk_fullsock() call
 * is spent here. */
static __always_inline struct bpf_sock *sock_of(struct __sk_buff *skb) { return skb->sk; }

/*
 * A socket seen on egress without flow state was opened before we attached (or is not a
 * connection to an upstream). Its first packet decides, once: an upstream connection gets
 * adopted flow state (so `measure` and the daemon see a running tunnel's keep-alive pool at
 * once), anything else gets an "ignored" marker so later packets return after one lookup.
 */
static __always_inline struct tg_lat_flow *adopt(struct __sk_buff *skb, struct bpf_sock *sk) {
  struct tg_lat_pkt p;
  struct tg_lat_flow *f = bpf_sk_storage_get(&tg_lat_flows, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
  if (!f) return 0;
  f->upstream = TG_LAT_MAX_UPSTREAMS;
  if (parse(skb, &p) != 0 || p.th->syn || p.th->fin || p.th->rst) return f;
  struct tg_lat_addr key = {};
  key.port = bpf_ntohs(p.th->dest);
  void *data = (void *)(long)skb->data;
  void *end = (void *)(long)skb->data_end;
  if (!p.v6) {
    struct iphdr *ip = data;
    if ((void *)(ip + 1) > end) return f;
    key.family = TG_AF_INET;
    __builtin_memcpy(key.addr, &ip->daddr, 4);
  } else {
    struct ipv6hdr *ip6 = data;
    if ((void *)(ip6 + 1) > end) return f;
    __u32 *w = (__u32 *)&ip6->daddr;
    if (w[0] == 0 && w[1] == 0 && w[2] == bpf_htonl(0xffff)) {
      key.family = TG_AF_INET;
      __builtin_memcpy(key.addr, &w[3], 4);
    } else {
      key.family = TG_AF_INET6;
      __builtin_memcpy(key.addr, &ip6->daddr, 16);
    }
  }
  __u32 *idx = bpf_map_lookup_elem(&tg_lat_up, &key);
  if (!idx || *idx >= TG_LAT_MAX_UPSTREAMS) return f;
  struct tg_lat_counters *c = counters(*idx);
  if (!c) return f;
  f->upstream = *idx;
  f->phase = TG_PHASE_IDLE;
  f->established = 1;
  f->adopted = 1;
  TG_ADD(c->conn_adopted, 1);
  TG_ADD(c->flows_tracked, 1);
  return f;
}

/* An adopted connection has no sockops state callback: its first FIN or RST closes it. */
static __always_inline void adopted_close(struct tg_lat_flow *f, struct tg_lat_counters *c,
                                          struct tg_lat_pkt *p, int ingress) {
  if (!f->established || !(p->th->fin || p->th->rst)) return;
  f->established = 0;
  if (ingress && p->th->rst) TG_ADD(c->fail_reset, 1);
  TG_ADD(c->conn_closed, 1);
  TG_ADD(c->flows_closed, 1);
}

/* ---- HTTP/2 ----------------------------------------------------------------------------
 * Cleartext HTTP/2 (prior knowledge: the connection starts with the client preface "PRI * ...";
 * or after an h2c upgrade: the preface starts a later packet) is read frame by frame: a turn
 * opens only with a HEADERS frame on a new client stream (an odd id above the last one seen) and
 * ends only with HEADERS or DATA on that stream, so SETTINGS, PING and WINDOW_UPDATE exchanges
 * are not requests, and a response to an older stream does not end a newer one's turn. Streams
 * opened while a turn is open are not counted (multiplexing: fewer requests, never more).
 * Frames are looked for from the start of each packet, TG_H2_MAX_FRAMES at most.
 */
#define TG_H2_DATA 0x0
#define TG_H2_HEADERS 0x1
#define TG_H2_RST_STREAM 0x3
#define TG_H2_GOAWAY 0x7
#define TG_H2_PREFACE_LEN 24
#define TG_H2_MAX_FRAMES 8
/* A new client stream id is at most this far above the last one (ids rise by 2 per stream):
 * mid-frame bytes that happen to look like a frame header are not taken for a request. */
#define TG_H2_STREAM_WINDOW 256

struct tg_h2_frame {
  __u32 len;
  __u32 stream;
  __u8 type;
};

static __always_inline int h2_frame(struct __sk_buff *skb, __u32 off, struct tg_h2_frame *fr) {
  __u8 h[9];
  if (bpf_skb_load_bytes(skb, off, h, sizeof(h))) return -1;
  fr->len = ((__u32)h[0] << 16) | ((__u32)h[1] << 8) | h[2];
  fr->type = h[3];
  fr->stream = ((__u32)(h[5] & 0x7f) << 24) | ((__u32)h[6] << 16) | ((__u32)h[7] << 8) | h[8];
  return 0;
}

static __always_inline int h2_preface(struct __sk_buff *skb, __u32 off) {
  char b[4];
  if (bpf_skb_load_bytes(skb, off, b, sizeof(b))) return 0;
  return b[0] == 'P' && b[1] == 'R' && b[2] == 'I' && b[3] == ' ';
}

/* Egress: the first client stream this packet opens (0: none); remembers the highest. */
static __always_inline __u32 h2_opened(struct __sk_buff *skb, __u32 off, struct tg_lat_flow *f) {
  __u32 first = 0;
  for (int i = 0; i < TG_H2_MAX_FRAMES; i++) {
    struct tg_h2_frame fr;
    if (h2_frame(skb, off, &fr)) break;
    __u32 last = f->h2_last_stream;
    if (fr.type == TG_H2_HEADERS && (fr.stream & 1) && fr.stream > last &&
        (last == 0 || fr.stream - last <= TG_H2_STREAM_WINDOW)) {
      f->h2_last_stream = fr.stream;
      if (!first) first = fr.stream;
    }
    off += 9 + fr.len;
  }
  return first;
}

/* Ingress: 1 when the packet carries the response on `stream` (HEADERS or DATA), 2 when that
 * stream or the connection is reset (RST_STREAM, GOAWAY: the turn ends unanswered), else 0. */
static __always_inline int h2_answered(struct __sk_buff *skb, __u32 off, __u32 stream) {
  for (int i = 0; i < TG_H2_MAX_FRAMES; i++) {
    struct tg_h2_frame fr;
    if (h2_frame(skb, off, &fr)) break;
    if (fr.stream == stream && (fr.type == TG_H2_HEADERS || fr.type == TG_H2_DATA)) return 1;
    if ((fr.stream == stream && fr.type == TG_H2_RST_STREAM) || fr.type == TG_H2_GOAWAY) return 2;
    off += 9 + fr.len;
  }
  return 0;
}

/*
 * HTTP/2 over TLS cannot be read: its SETTINGS acknowledgements and WINDOW_UPDATEs are
 * application-data records like requests, and would be counted as requests. A TLS connection
 * whose ClientHello offers "h2" in ALPN (RFC 7301) therefore counts its turns in tls_h2_turns,
 * never as requests (the offer, not the server's choice, which TLS 1.3 encrypts: clients that
 * offer h2 to an origin that declines are under-counted, never over-counted).
 */
#define TG_TLS_EXT_ALPN 16
#define TG_TLS_MAX_EXTENSIONS 32
#define TG_TLS_MAX_ALPN_NAMES 8

static __always_inline int load_u8(struct __sk_buff *skb, __u32 off, __u32 *v) {
  __u8 b;
  if (bpf_skb_load_bytes(skb, off, &b, 1)) return -1;
  *v = b;
  return 0;
}

static __always_inline int load_u16(struct __sk_buff *skb, __u32 off, __u32 *v) {
  __u8 b[2];
  if (bpf_skb_load_bytes(skb, off, b, 2)) return -1;
  *v = ((__u32)b[0] << 8) | b[1];
  return 0;
}

/* Offset of the ALPN extension's body in a ClientHello record at `off`, 0 if none. */
static __always_inline __u32 tls_alpn_offset(struct __sk_buff *skb, __u32 off) {
  __u32 v, type;
  /* record header (5), handshake type and length (4), version (2), random (32) */
  if (load_u8(skb, off + 5, &type) || type != 1) return 0; /* ClientHello */
  __u32 p = off + 43;
  if (load_u8(skb, p, &v)) return 0; /* session id */
  p += 1 + v;
  if (load_u16(skb, p, &v)) return 0; /* cipher suites */
  p += 2 + v;
  if (load_u8(skb, p, &v)) return 0; /* compression methods */
  p += 1 + v + 2;                    /* and the extensions' total length */
  for (int i = 0; i < TG_TLS_MAX_EXTENSIONS; i++) {
    if (load_u16(skb, p, &type) || load_u16(skb, p + 2, &v)) return 0;
    if (type == TG_TLS_EXT_ALPN) return p + 4;
    p += 4 + v;
  }
  return 0;
}

static __always_inline int tls_offers_h2(struct __sk_buff *skb, __u32 off) {
  __u32 p = tls_alpn_offset(skb, off);
  if (p == 0) return 0;
  p += 2; /* the protocol list's length */
  for (int i = 0; i < TG_TLS_MAX_ALPN_NAMES; i++) {
    __u8 name[3];
    if (bpf_skb_load_bytes(skb, p, name, sizeof(name))) return 0;
    if (name[0] == 2 && name[1] == 'h' && name[2] == '2') return 1;
    p += 1 + name[0];
  }
  return 0;
}

/* Egress on a cleartext HTTP/2 connection. */
static __always_inline void h2_egress(struct __sk_buff *skb, __u32 off, struct tg_lat_flow *f) {
  if (h2_preface(skb, off)) off += TG_H2_PREFACE_LEN;
  __u32 stream = h2_opened(skb, off, f);
  if (stream && f->phase == TG_PHASE_IDLE) {
    f->t_start = bpf_ktime_get_ns();
    f->phase = TG_PHASE_REQUEST;
    f->h2_turn_stream = stream;
  }
}

static __always_inline int first_byte(struct __sk_buff *skb, int off) {
  __u8 b;
  /* Payload usually sits in page fragments, out of direct reach: use the helper. */
  if (bpf_skb_load_bytes(skb, off, &b, 1)) return -1;
  return b;
}

SEC("cgroup_skb/egress")
int tg_lat_egress(struct __sk_buff *skb) {
  struct bpf_sock *sk = sock_of(skb);
  if (!sk) return 1;
  struct tg_lat_flow *f = bpf_sk_storage_get(&tg_lat_flows, sk, 0, 0);
  if (!f) f = adopt(skb, sk);
  if (!f || f->upstream >= TG_LAT_MAX_UPSTREAMS) return 1;
  struct tg_lat_counters *c = counters(f->upstream);
  if (!c) return 1;
  struct tg_lat_pkt p;
  if (parse(skb, &p) != 0) return 1;
  if (f->adopted) adopted_close(f, c, &p, 0);
  if (skb->len <= (__u32)p.off) return 1; /* SYN, pure ACK, FIN: no payload */
  int off = p.off;
  TG_ADD(c->bytes_sent, skb->len - (__u32)off);

  int b = -1;
  if (!f->classified) {
    b = first_byte(skb, off);
    f->tls = b == TG_TLS_HANDSHAKE;
    f->tls_h2 = f->tls && tls_offers_h2(skb, off);
    /* An adopted connection is past its preface: a frame header (length's high byte 0) where
     * an HTTP/1 request would start with a method's letter. */
    f->h2 = !f->tls && (h2_preface(skb, off) || (f->adopted && b == 0));
    f->classified = 1;
  } else if (!f->tls && !f->h2 && f->phase == TG_PHASE_IDLE && h2_preface(skb, off)) {
    f->h2 = 1; /* the preface after an h2c upgrade's 101 */
  }
  if (f->h2) {
    h2_egress(skb, off, f);
    return 1;
  }
  if (f->phase == TG_PHASE_IDLE) {
    f->t_start = bpf_ktime_get_ns();
    if (!f->tls) {
      f->phase = TG_PHASE_REQUEST;
      return 1;
    }
    if (b < 0) b = first_byte(skb, off);
    if (b == TG_TLS_APPDATA) {
      f->phase = TG_PHASE_REQUEST;
    } else {
      f->phase = TG_PHASE_HANDSHAKE;
      TG_ADD(c->handshake_turns, 1);
    }
  } else if (f->phase == TG_PHASE_HANDSHAKE) {
    /* The request a client sends right behind its last handshake flight. */
    if (first_byte(skb, off) == TG_TLS_APPDATA) {
      f->t_start = bpf_ktime_get_ns();
      f->phase = TG_PHASE_REQUEST;
    }
  }
  return 1;
}

SEC("cgroup_skb/ingress")
int tg_lat_ingress(struct __sk_buff *skb) {
  struct bpf_sock *sk = sock_of(skb);
  if (!sk) return 1;
  struct tg_lat_flow *f = bpf_sk_storage_get(&tg_lat_flows, sk, 0, 0);
  if (!f || f->upstream >= TG_LAT_MAX_UPSTREAMS) return 1;
  struct tg_lat_counters *c = counters(f->upstream);
  if (!c) return 1;
  struct tg_lat_pkt p;
  if (parse(skb, &p) != 0) return 1;
  if (f->adopted) adopted_close(f, c, &p, 1);
  if (skb->len <= (__u32)p.off) return 1;
  /* Fields only this program writes: plain adds (see record_softirq()). */
  c->bytes_received += skb->len - (__u32)p.off;
  if (f->phase == TG_PHASE_REQUEST && f->h2) {
    int answered = h2_answered(skb, p.off, f->h2_turn_stream);
    if (answered == 0) return 1; /* control frames, older streams: the turn stays open */
    if (answered == 2) {
      f->phase = TG_PHASE_IDLE;
      return 1;
    }
  }
  if (f->phase == TG_PHASE_REQUEST && f->tls_h2) {
    c->tls_h2_turns += 1;
  } else if (f->phase == TG_PHASE_REQUEST) {
    struct tg_lat_hist *h = hist(f->upstream, TG_LAT_REQUEST);
    if (h) record_softirq(h, bpf_ktime_get_ns() - f->t_start);
    c->requests += 1;
  }
  f->phase = TG_PHASE_IDLE;
  return 1;
}

/* ---- flow-state census ---------------------------------------------------------------- */

/* Counts the live entries of tg_lat_flows (tests, and the daemon's map-size metric). Loaded
 * only when asked: iterators are tracing programs and cost ~10 ms of kernel BTF parsing. */
__u64 tg_lat_flow_count;

SEC("iter/bpf_sk_storage_map")
int tg_lat_flows_it(struct bpf_iter__bpf_sk_storage_map *ctx) {
  if (ctx->sk && ctx->value) __sync_fetch_and_add(&tg_lat_flow_count, 1);
  return 0;
}
