# Stand-in for nixpkgs' own services.cloudflared (nixos/modules/services/networking/
# cloudflared.nix), reduced to the unit it makes per tunnel: cloudflared-tunnel-<name>.service
# with DynamicUser=, Restart=on-failure, RuntimeDirectory=, LoadCredential=, no Type= (simple),
# and ExecStart= running `cloudflared tunnel run`; plus its own network ordering.
{ config, lib, pkgs, ... }:
let
  cfg = config.services.cloudflared;
in
{
  options.services.cloudflared = {
    enable = lib.mkEnableOption "Cloudflare Tunnel client daemon";
    tunnels = lib.mkOption {
      type = lib.types.attrsOf (
        lib.types.submodule {
          options.credentialsFile = lib.mkOption { type = lib.types.str; };
          options.default = lib.mkOption {
            type = lib.types.str;
            default = "http_status:404";
          };
        }
      );
      default = { };
    };
  };

  config.systemd.services = lib.mkIf cfg.enable (
    lib.mapAttrs' (
      name: tunnel:
      lib.nameValuePair "cloudflared-tunnel-${name}" {
        after = [ "network.target" "network-online.target" ];
        wants = [ "network.target" "network-online.target" ];
        wantedBy = [ "multi-user.target" ];
        serviceConfig = {
          RuntimeDirectory = "cloudflared-tunnel-${name}";
          RuntimeDirectoryMode = "0400";
          LoadCredential = [ "credentials.json:${tunnel.credentialsFile}" ];
          ExecStart = "${pkgs.cloudflared}/bin/cloudflared tunnel --config=/etc/cloudflared/${name}.yml --no-autoupdate run";
          Restart = "on-failure";
          DynamicUser = true;
        };
      }
    ) cfg.tunnels
  );
}
