// What the confined API face and the agent say to each other. The face runs the gRPC server
// (HTTP/2 and protobuf parsing); for each call it opens a socketpair, hands one end to the
// agent over their control channel with the id of the client connection the call came on, and
// sends the call in a fixed form: a method byte, a flag byte and three short strings. The agent
// reads nothing richer than that from a face; it answers with a status and the serialized
// protobuf response (for WatchEvents, one reply per event). The agent accepted the client
// connection itself and read its SO_PEERCRED, so who is calling is the agent's knowledge, not
// the face's word.
#ifndef TUNNELGUARD_AGENT_FACE_API_CALLS_H_
#define TUNNELGUARD_AGENT_FACE_API_CALLS_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "agent/base/result.h"
#include "agent/base/unique_fd.h"

namespace tg::face {

enum class ApiMethod : char { kStatus = 'S', kStats = 'T', kEvents = 'W', kSetMode = 'M' };

struct ApiCall {
  ApiMethod method = ApiMethod::kStatus;
  bool include_histogram = false;  // GetStats
  std::string policy;              // WatchEvents, SetMode
  std::string mode_or_action;      // SetMode's mode, WatchEvents' action
  std::string target;              // WatchEvents, SetMode
};
// Policy, mode, action and target names are short; anything longer is not a call.
inline constexpr size_t kMaxCallString = 256;
inline constexpr size_t kMaxCallBytes = 2 + 3 * (2 + kMaxCallString);

std::string EncodeCall(const ApiCall& call);
// Exactly one well-formed call, or an error naming what is wrong with it.
Result<ApiCall> DecodeCall(std::string_view bytes);

struct ApiReply {
  int code = 0;         // a gRPC status code (0 = OK)
  std::string message;  // the status's message
  std::string payload;  // the serialized response or event (OK only)
};
std::string EncodeReply(const ApiReply& reply);
Result<ApiReply> DecodeReply(std::string_view bytes);

// The control channel (SOCK_SEQPACKET): each message is an 8-byte id and one descriptor —
// agent -> face: an accepted client connection; face -> agent: a call's socket.
Status SendDescriptor(int channel, uint64_t id, int fd, std::chrono::milliseconds timeout);
struct ReceivedDescriptor {
  uint64_t id = 0;
  UniqueFd fd;
};
// kNotFound when the other side has closed; a message that is not exactly an id with one
// descriptor is an error (any descriptors it carried are closed).
Result<ReceivedDescriptor> ReceiveDescriptor(int channel, std::chrono::milliseconds timeout,
                                             int stop_fd = -1);

}  // namespace tg::face

#endif  // TUNNELGUARD_AGENT_FACE_API_CALLS_H_
