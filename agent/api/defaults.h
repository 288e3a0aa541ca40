// Where the agent's API lives, shared by the server and tunnelctl.
#ifndef TUNNELGUARD_AGENT_GRPC_DEFAULTS_H_
#define TUNNELGUARD_AGENT_GRPC_DEFAULTS_H_

namespace tg::grpcapi {

inline constexpr char kDefaultSocket[] = "/run/tunnelguard/tunnelguard.sock";
// The socket's group: its members may read (status, stats, events); only root changes modes.
inline constexpr char kSocketGroup[] = "tunnelguard";

}  // namespace tg::grpcapi

#endif  // TUNNELGUARD_AGENT_GRPC_DEFAULTS_H_
