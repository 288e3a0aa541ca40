// /metrics from a confined process. The agent binds the socket (errors name the address as
// before), starts the face with it (`tunnelguard __face metrics`), and answers the face's scrape
// requests from its collectables; the face alone parses HTTP, with no capability, no inherited
// descriptor but the listening socket and its channel, and a seccomp allow-list (confine.h).
// A face that exits, stalls or sends anything but a scrape request is replaced; one that fails
// to start is retried with a growing delay (1 s to 30 s), and the agent runs on meanwhile:
// enforcement does not depend on /metrics, and a target that does not answer is what
// Prometheus's `up` and the absent-target alert are for.
#ifndef TUNNELGUARD_AGENT_FACE_METRICS_FACE_H_
#define TUNNELGUARD_AGENT_FACE_METRICS_FACE_H_

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "agent/base/result.h"
#include "agent/base/unique_fd.h"
#include "agent/face/face_process.h"
#include "exporter/metrics_server.h"

namespace tg::face {

class MetricsFace {
 public:
  // Listens on `listen` (the only error: the address), starts the face and waits until it
  // says it is confined and serving (or logs why not and keeps trying in the background).
  static Result<std::unique_ptr<MetricsFace>> Start(const std::string& listen,
                                                    exporter::ScrapeFn scrape);
  ~MetricsFace();
  MetricsFace(const MetricsFace&) = delete;
  MetricsFace& operator=(const MetricsFace&) = delete;

  std::string url() const { return listener_.url(); }
  pid_t pid() const;  // the face's current process

 private:
  MetricsFace() = default;
  Status SpawnFace();                    // a new face on the listening socket, ready or an error
  void Host();                           // answers the face's requests; replaces a face that fails
  bool Answer();                         // one request; false when the face is to be replaced
  void Replace(const std::string& why);  // ends the current face (logged)

  exporter::MetricsListener listener_;
  exporter::ScrapeFn scrape_;
  UniqueFd stop_fd_;       // eventfd: the destructor wakes Host()
  mutable std::mutex mu_;  // guards face_ (pid() reads it from other threads)
  FaceProcess face_;
  UniqueFd channel_;  // the agent's end of the socketpair with the current face
  std::chrono::milliseconds retry_delay_{0};  // before the next start (0: at once)
  // The last exposition of each format and when it was made: a face asking again within
  // kMinScrapeInterval gets it again, so a face gone rogue cannot keep the agent collecting
  // back to back.
  struct Cached {
    std::optional<std::string> body;
    std::chrono::steady_clock::time_point made{};
  };
  Cached last_[2];  // [kText], [kProtobuf]
  std::thread host_;
};

// `tunnelguard __face metrics AGENT_PID`: fd 3 listens, fd 4 is the channel to the agent.
int MetricsFaceMain(pid_t agent);

}  // namespace tg::face

#endif  // TUNNELGUARD_AGENT_FACE_METRICS_FACE_H_
