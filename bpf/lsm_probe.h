/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* ABI of lsm_probe.bpf.c shared with the agent: counters in .bss, read by the loader. */
#ifndef TUNNELGUARD_BPF_LSM_PROBE_H_
#define TUNNELGUARD_BPF_LSM_PROBE_H_

/* Indices into tg_probe_hits[]: what the probe program decided, per call. */
enum tg_probe_verdict {
  TG_PROBE_ALLOWED = 0,
  TG_PROBE_DENIED = 1,
  TG_PROBE_VERDICTS = 2,
};

#endif /* TUNNELGUARD_BPF_LSM_PROBE_H_ */
