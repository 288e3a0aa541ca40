# Evaluates deploy/nixos/module.nix for several configurations and checks the units, files
# and assertions it produces. Result: a list of { name; ok; got } — nixos_test.sh fails on any
# ok = false and prints what was got. Run:
#   nix-instantiate --eval --strict --json tests/deploy/nixos/module-test.nix
let
  module = import ../../../deploy/nixos/module.nix;
  eval = userConfig: import ./eval-module.nix { inherit module userConfig; };
  pkg = "/nix/store/00000000000000000000000000000000-tunnelguard-0.1.0";
  check = name: got: want: { inherit name got; ok = got == want; };
  holds = name: got: pred: { inherit name got; ok = pred got; };
  failed = c: map (a: a.message) (builtins.filter (a: !a.assertion) c.assertions);
  contains = needle: s: builtins.match ".*${needle}.*" s != null;
  lines = s: builtins.filter (l: builtins.isString l && l != "") (builtins.split "\n" s);
  # The long flags of `tunnelguard run` as designed (README "Usage", issue 6): every key the
  # module writes must be one of them.
  runFlags = [ "unit" "cgroup" "config" "metrics-listen" "detach-on-exit" "upstream" "mode" "families" "wx-memory" "bpffs-dir" "grpc-socket" ];
  keysOf = text: map (l: builtins.head (builtins.match "([a-z-]+) = .*" l)) (builtins.filter (l: builtins.substring 0 1 l != "#") (lines text));

  # 1. Defaults, on a system whose security.lsm includes bpf.
  d = eval { services.tunnelguard.enable = true; security.lsm = [ "landlock" "yama" "bpf" ]; };
  dAgent = d.systemd.services.tunnelguard;
  dTunnel = d.systemd.services.cloudflared-tunnel;
  dConf = d.environment.etc."tunnelguard/tunnelguard.conf".text;
  shipped = import ../../../deploy/nixos/unit-file.nix (builtins.readFile ../../../deploy/systemd/tunnelguard.service);

  # 2. Everything changed.
  c = eval {
    services.tunnelguard = {
      enable = true;
      tunnelUnit = "cloudflared-tunnel-abc";
      metrics = { listenAddress = "::1"; port = 9700; };
      openFirewall = true;
      requireAgent = true;
      mode = "audit";
      families = [ "inet" ];
      wxMemory = "off";
      upstreams = { web = "127.0.0.1:8080"; };
      settings = { grpc-socket = "/run/tunnelguard/other.sock"; detach-on-exit = true; };
    };
    boot.kernelParams = [ "quiet" "lsm=landlock,yama,bpf" ];
  };
  cAgent = c.systemd.services.tunnelguard;
  cTunnel = c.systemd.services.cloudflared-tunnel-abc;
  cConf = c.environment.etc."tunnelguard/tunnelguard.conf".text;

  # 3. An lsm= kernel parameter without bpf: fail-closed config refuses to build ...
  noBpf = eval { services.tunnelguard.enable = true; boot.kernelParams = [ "lsm=landlock,yama" ]; security.lsm = [ "bpf" ]; };
  # ... and with the opt-out it builds, warns, and the gate becomes "-+ … || warn".
  optOut = eval { services.tunnelguard = { enable = true; allowUnenforced = true; }; boot.kernelParams = [ "lsm=landlock,yama" ]; };
  # 4. Nothing known about the LSM list: a warning, no failure.
  unknownLsm = eval { services.tunnelguard.enable = true; };
  # 5. Disabled: the module adds nothing.
  off = eval { security.lsm = [ "bpf" ]; };
  # 6. settings may not override what the options manage.
  clash = eval { services.tunnelguard = { enable = true; settings.metrics-listen = "0.0.0.0:1"; }; security.lsm = [ "bpf" ]; };
  # 7. Type errors are errors.
  rejects = cfg: !(builtins.tryEval (builtins.deepSeq (eval cfg).systemd (eval cfg).systemd)).success;
in
[
  (check "default ExecStart" dAgent.serviceConfig.ExecStart "${pkg}/bin/tunnelguard run --config /etc/tunnelguard/tunnelguard.conf --unit cloudflared-tunnel.service --metrics-listen 127.0.0.1:9612")
  (check "agent ordered before the tunnel" dAgent.before [ "cloudflared-tunnel.service" ])
  (check "agent wanted by multi-user.target" dAgent.wantedBy [ "multi-user.target" ])
  (check "agent Type=notify" dAgent.serviceConfig.Type "notify")
  (check "agent WatchdogSec" dAgent.serviceConfig.WatchdogSec "30s")
  (check "agent Restart" dAgent.serviceConfig.Restart "on-failure")
  (check "agent RuntimeDirectory" dAgent.serviceConfig.RuntimeDirectory "tunnelguard")
  (check "agent ConfigurationDirectory" dAgent.serviceConfig.ConfigurationDirectory "tunnelguard")
  (check "agent capabilities" dAgent.serviceConfig.CapabilityBoundingSet "CAP_BPF CAP_PERFMON CAP_NET_ADMIN CAP_SYS_ADMIN")
  (check "agent ProtectSystem" dAgent.serviceConfig.ProtectSystem "strict")
  (check "agent ReadWritePaths" dAgent.serviceConfig.ReadWritePaths "/sys/fs/bpf")
  (check "agent families" dAgent.serviceConfig.RestrictAddressFamilies "AF_UNIX AF_INET AF_INET6")
  (check "agent SystemCallFilter (3 lines)" dAgent.serviceConfig.SystemCallFilter [ "@system-service bpf" "~@privileged @resources" "bpf" ])
  (check "agent sandbox = shipped unit, but ExecStart" (removeAttrs dAgent.serviceConfig [ "ExecStart" ]) (removeAttrs shipped.Service [ "ExecStart" ]))
  (check "agent metrics loopback only" dAgent.serviceConfig.IPAddressAllow "localhost")
  (check "agent RequiresMountsFor bpffs" dAgent.unitConfig.RequiresMountsFor "/sys/fs/bpf")
  (check "tunnel after agent" dTunnel.after [ "tunnelguard.service" ])
  (check "tunnel wants agent" dTunnel.wants [ "tunnelguard.service" ])
  (check "tunnel does not require agent by default" dTunnel.requires [ ])
  (check "tunnel fail-closed gate" dTunnel.serviceConfig.ExecStartPre [ "+${pkg}/bin/tunnelguard attach --unit %n --policy-from-unit" ])
  (check "tunnel RestrictAddressFamilies" dTunnel.serviceConfig.RestrictAddressFamilies "AF_INET AF_INET6")
  (check "tunnel MemoryDenyWriteExecute" dTunnel.serviceConfig.MemoryDenyWriteExecute true)
  (check "group tunnelguard" (d.users.groups ? tunnelguard) true)
  (check "firewall closed" d.networking.firewall.allowedTCPPorts [ ])
  (check "config file" (lines dConf) [
    "# Generated by the NixOS module services.tunnelguard; edit the options, not this file."
    "upstream = web=127.0.0.1:80,websecure=127.0.0.1:443"
    "mode = enforce"
    "families = inet,inet6"
    "wx-memory = deny"
  ])
  (check "restart on config change" dAgent.restartTriggers [ dConf ])
  (check "defaults: no failed assertion" (failed d) [ ])
  (check "defaults: no warning" d.warnings [ ])

  (check "custom ExecStart (IPv6, port, unit)" cAgent.serviceConfig.ExecStart "${pkg}/bin/tunnelguard run --config /etc/tunnelguard/tunnelguard.conf --unit cloudflared-tunnel-abc.service --metrics-listen [::1]:9700")
  (check "custom: before the named tunnel" cAgent.before [ "cloudflared-tunnel-abc.service" ])
  (check "custom: tunnel requires agent" cTunnel.requires [ "tunnelguard.service" ])
  (check "custom: gate on the named tunnel" cTunnel.serviceConfig.ExecStartPre [ "+${pkg}/bin/tunnelguard attach --unit %n --policy-from-unit" ])
  (check "custom: families" cTunnel.serviceConfig.RestrictAddressFamilies "AF_INET")
  (check "custom: W^X off" cTunnel.serviceConfig.MemoryDenyWriteExecute false)
  (check "custom: firewall" c.networking.firewall.allowedTCPPorts [ 9700 ])
  (check "custom: remote scrapers allowed" cAgent.serviceConfig.IPAddressAllow "any")
  (check "custom: LAN listener waits for the network" [ cAgent.after cAgent.wants ] [ [ "network-online.target" ] [ "network-online.target" ] ])
  (check "default: loopback listener does not wait for the network" [ dAgent.after dAgent.wants ] [ [ ] [ ] ])
  (check "custom: no default tunnel unit touched" (c.systemd.services ? "cloudflared-tunnel") false)
  (holds "custom: config has audit mode" cConf (contains "\nmode = audit\n"))
  (holds "custom: config has upstream" cConf (contains "\nupstream = web=127.0.0.1:8080\n"))
  (holds "custom: config has settings" cConf (s: contains "\ngrpc-socket = /run/tunnelguard/other.sock\n" s && contains "\ndetach-on-exit = true\n" s))
  (check "custom: lsm= with bpf passes" (failed c) [ ])
  (holds "every config key is a `tunnelguard run` flag" (keysOf cConf ++ keysOf dConf) (builtins.all (k: builtins.elem k runFlags)))

  (holds "lsm= without bpf: assertion fails, names bpf" (failed noBpf) (m: builtins.length m == 1 && contains "lacks `bpf`" (builtins.head m)))
  (check "opt-out: builds" (failed optOut) [ ])
  (holds "opt-out: warns" optOut.warnings (w: builtins.length w == 1 && contains "unguarded" (builtins.head w)))
  (holds "opt-out: gate ignores failure, warns at crit" optOut.systemd.services.cloudflared-tunnel.serviceConfig.ExecStartPre
    (l: builtins.length l == 1 && contains "^-\\+/bin/sh -c '${pkg}/bin/tunnelguard attach --unit %n --policy-from-unit [|][|] echo \"<2>" (builtins.head l)))
  (holds "unknown LSM list: warning only" { f = failed unknownLsm; w = unknownLsm.warnings; } (r: r.f == [ ] && builtins.length r.w == 1))
  (check "disabled: adds nothing" off { })
  (holds "settings may not repeat managed keys" (failed clash) (m: builtins.length m == 1 && contains "may not set" (builtins.head m)))
  (check "rejects mode = block" (rejects { services.tunnelguard = { enable = true; mode = "block"; }; }) true)
  (check "rejects port 70000" (rejects { services.tunnelguard = { enable = true; metrics.port = 70000; }; }) true)
  (check "rejects family ipx" (rejects { services.tunnelguard = { enable = true; families = [ "ipx" ]; }; }) true)
  (check "rejects an unknown option" (rejects { services.tunnelguard = { enable = true; mdoe = "audit"; }; }) true)
  (check "accepts a valid config (the reject checks can pass)" (rejects { services.tunnelguard.enable = true; }) false)
]
