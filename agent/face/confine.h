// What a face gives up before it reads a byte from the network: every capability, the right
// to gain privileges again, every inherited descriptor it was not handed, and every system
// call its loop does not make (a seccomp allow-list without open, exec, socket, ptrace or
// signals to others). The face keeps uid 0 only because changing it would need CAP_SETUID in
// the unit; without capabilities and without open() a uid opens nothing.
#ifndef TUNNELGUARD_AGENT_FACE_CONFINE_H_
#define TUNNELGUARD_AGENT_FACE_CONFINE_H_

#include <sys/types.h>

#include <span>

#include "agent/base/result.h"

namespace tg::face {

// Closes every descriptor from `first_unused` up (what posix_spawn could not close for us).
void CloseInheritedFds(int first_unused);

// Drops all capabilities (effective, permitted, inheritable, ambient), sets no_new_privs,
// asks for SIGKILL when `agent` exits (and fails if it already has), then loads the allow-list.
// An error names the step that failed and what allows it (e.g. capset in SystemCallFilter=).
Status ConfineFace(pid_t agent);

// The two halves of ConfineFace, for a face that must start threads between them (the API
// face's gRPC server): capabilities are per thread, so they go before any thread exists;
// the filter, loaded with TSYNC, then covers every thread. Nothing from the network is read
// before the filter is in place.
Status DropPrivileges(pid_t agent);
// `extra`: calls allowed beyond the metrics face's loop (names libseccomp does not know are
// skipped).
Status LoadAllowList(std::span<const char* const> extra = {});

}  // namespace tg::face

#endif  // TUNNELGUARD_AGENT_FACE_CONFINE_H_
