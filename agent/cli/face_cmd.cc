// `tunnelguard __face ROLE AGENT_PID`: not a command for people. The daemon starts its faces
// this way (agent/face/face_process.h); it is dispatched before the command line is parsed,
// so it appears in no help, completion or man page.
#include <cstdlib>
#include <string_view>

#include "agent/base/log.h"
#include "agent/cli/cli.h"
#include "agent/face/api_face.h"
#include "agent/face/face_process.h"
#include "agent/face/metrics_face.h"

namespace tg::cli {

std::optional<int> MaybeRunFace(int argc, char** argv) {
  if (argc < 2 || std::string_view(argv[1]) != face::kFaceCommand) return std::nullopt;
  const pid_t agent = argc == 4 ? static_cast<pid_t>(std::atoi(argv[3])) : 0;
  if (agent > 0 && std::string_view(argv[2]) == "metrics") return face::MetricsFaceMain(agent);
  if (agent > 0 && std::string_view(argv[2]) == "api") return face::ApiFaceMain(agent);
  log::Error("{} is started by `tunnelguard run` itself, not by hand", face::kFaceCommand);
  return kExitUsage;
}

}  // namespace tg::cli
