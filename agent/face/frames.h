// What the agent and a confined face say to each other over their socketpair (a stream):
// the face asks with one byte, the agent answers with a frame, [4-byte length][payload]. The
// agent reads nothing else from a face, so a face taken over by its network input can ask for
// a scrape and nothing more.
#ifndef TUNNELGUARD_AGENT_FACE_FRAMES_H_
#define TUNNELGUARD_AGENT_FACE_FRAMES_H_

#include <chrono>
#include <string>
#include <string_view>

#include "agent/base/result.h"

namespace tg::face {

inline constexpr char kReady = 'R';           // face -> agent, once: confined, about to serve
inline constexpr char kScrapeText = 'T';      // face -> agent: the text exposition, please
inline constexpr char kScrapeProtobuf = 'P';  // face -> agent: the protobuf one (native histograms)
// The largest exposition the face accepts (a few hundred kB with fine histograms).
inline constexpr size_t kMaxFrameBytes = 64u << 20;

// Every call has a deadline, so a peer that stops reading or writing cannot hold the other
// side; `stop_fd` (an eventfd, -1: none) ends a wait early with kInternal "stopped".
Status SendByte(int fd, char byte, std::chrono::milliseconds timeout);
// Waits until `fd` is ready for `events` (poll) or `deadline` passes; a readable `stop_fd` ends
// the wait with kInternal "stopped", the deadline with kInternal "timed out".
Status Await(int fd, short events, std::chrono::steady_clock::time_point deadline,
             int stop_fd = -1);
// One byte within `timeout`; kNotFound when the other side has closed.
Result<char> ReceiveByte(int fd, std::chrono::milliseconds timeout, int stop_fd = -1);
Status SendFrame(int fd, std::string_view payload, std::chrono::milliseconds timeout);
// A frame longer than `max_bytes` is an error (nothing is allocated for it).
Result<std::string> ReceiveFrame(int fd, std::chrono::milliseconds timeout,
                                 size_t max_bytes = kMaxFrameBytes);

}  // namespace tg::face

#endif  // TUNNELGUARD_AGENT_FACE_FRAMES_H_
