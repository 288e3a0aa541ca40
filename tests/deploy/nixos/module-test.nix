# Evaluates deploy/nixos/module.nix (and flake.nix's module and overlay) with nixpkgs' real lib
# — lib.evalModules: types, priorities, merging — for several configurations, beside stand-ins
# for the NixOS options it touches (nixos-options.nix) and for nixpkgs' services.cloudflared
# (cloudflared-module.nix). Result: a list of { name; ok; got }; nixos_test.sh fails on any
# ok = false and prints what was got. Run (LIB = a nixpkgs lib directory):
#   nix-instantiate --eval --strict --json tests/deploy/nixos/module-test.nix --arg lib "import LIB"
{ lib }:
let
  module = ../../../deploy/nixos/module.nix;
  drv = name: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
  };
  pkgs = {
    tunnelguard = drv "tunnelguard-0.1.0";
    cloudflared = drv "cloudflared-2026.1.0";
    coreutils = drv "coreutils-9.5";
    runtimeShell = "${drv "bash-5.2"}/bin/bash";
    callPackage = _path: _args: drv "tunnelguard-from-source";
  };
  evalWith =
    p: modules:
    (lib.evalModules {
      modules = [
        ./nixos-options.nix
        ./cloudflared-module.nix
        { _module.args.pkgs = p; }
      ] ++ modules;
    }).config;
  # eval CONFIGS: one configuration module or a list of them, merged by the module system.
  eval = cfgs: evalWith pkgs ([ module ] ++ lib.toList cfgs);

  pkg = "/nix/store/00000000000000000000000000000000-tunnelguard-0.1.0";
  gate = "+${pkg}/bin/tunnelguard attach --unit %n --policy-from-unit";
  agentCmd = units: "${pkg}/bin/tunnelguard run --config /etc/tunnelguard/tunnelguard.conf ${lib.concatMapStrings (u: "--unit ${u}.service ") units}--metrics-listen 127.0.0.1:9612";
  check = name: got: want: { inherit name got; ok = got == want; };
  holds = name: got: pred: { inherit name got; ok = pred got; };
  failed = c: map (a: a.message) (builtins.filter (a: !a.assertion) c.assertions);
  contains = needle: s: builtins.match ".*${needle}.*" s != null;
  lines = s: builtins.filter (l: builtins.isString l && l != "") (builtins.split "\n" s);
  # Evaluation fails (a type error, a conflict, an unknown option): forced as NixOS would.
  rejects = cfg: !(builtins.tryEval (builtins.deepSeq (eval cfg).systemd.services true)).success;
  # The long flags of `tunnelguard run`: every key the module writes must be one of them.
  runFlags = [ "unit" "cgroup" "config" "metrics-listen" "detach-on-exit" "upstream" "mode" "families" "wx-memory" "bpffs-dir" "grpc-socket" "histogram-buckets-per-decade" ];
  keysOf = text: map (l: builtins.head (builtins.match "([a-z-]+) = .*" l)) (builtins.filter (l: builtins.substring 0 1 l != "#") (lines text));
  lsm = { security.lsm = [ "landlock" "yama" "bpf" ]; };

  # The project's real user: a hand-written unit with its own sandbox and ExecStartPre=.
  userPre = "${pkgs.coreutils}/bin/test -r /etc/cloudflared/token";
  realUserUnit = {
    description = "Cloudflare Tunnel";
    after = [ "network-online.target" ];
    wants = [ "network-online.target" ];
    wantedBy = [ "multi-user.target" ];
    serviceConfig = {
      ExecStartPre = [ userPre ];
      ExecStart = "${pkgs.cloudflared}/bin/cloudflared tunnel --no-autoupdate run --token-file /etc/cloudflared/token";
      User = "cloudflared";
      Group = "cloudflared";
      Restart = "on-failure";
      PrivatePIDs = true;
      PrivateUsers = true;
      PrivateDevices = true;
      PrivateTmp = true;
      PrivateMounts = true;
      ProtectSystem = "strict";
      ProtectHome = true;
      NoNewPrivileges = true;
      CapabilityBoundingSet = "";
      RestrictAddressFamilies = "AF_INET AF_INET6";
      MemoryDenyWriteExecute = true;
    };
  };

  # 1. The real user's configuration: their own systemd.services.cloudflared-tunnel.
  d = eval ([ lsm {
    services.tunnelguard = { enable = true; units = [ "cloudflared-tunnel" ]; };
    systemd.services.cloudflared-tunnel = realUserUnit;
  } ]);
  dAgent = d.systemd.services.tunnelguard;
  dTunnel = d.systemd.services.cloudflared-tunnel;
  dConf = d.environment.etc."tunnelguard/tunnelguard.conf".text;
  shipped = import ../../../deploy/nixos/unit-file.nix (builtins.readFile ../../../deploy/systemd/tunnelguard.service);

  # 2. nixpkgs-style: two services.cloudflared tunnels, nothing named by hand.
  tunnels = {
    services.cloudflared = {
      enable = true;
      tunnels.home.credentialsFile = "/var/lib/cloudflared/home.json";
      tunnels.lab.credentialsFile = "/var/lib/cloudflared/lab.json";
    };
  };
  two = eval ([ lsm tunnels { services.tunnelguard.enable = true; } ]);
  twoHome = two.systemd.services.cloudflared-tunnel-home;
  # ... plus the user's own unit, and with the nixpkgs tunnels left out.
  three = eval ([ lsm tunnels {
    services.tunnelguard = { enable = true; units = [ "cloudflared-tunnel.service" ]; };
    systemd.services.cloudflared-tunnel = realUserUnit;
  } ]);
  ownOnly = eval ([ lsm tunnels {
    services.tunnelguard = { enable = true; guardCloudflaredTunnels = false; units = [ "cloudflared-tunnel" ]; };
    systemd.services.cloudflared-tunnel = realUserUnit;
  } ]);

  # 3. Wrong: a unit name that does not exist (a typo), and nothing to guard at all.
  typo = eval ([ lsm tunnels { services.tunnelguard = { enable = true; units = [ "cloudflared-tunel" ]; }; } ]);
  nothing = eval ([ lsm { services.tunnelguard.enable = true; } ]);

  # 4. Everything changed.
  c = eval {
    services.tunnelguard = {
      enable = true;
      units = [ "cloudflared-tunnel-abc" ];
      metrics = { listenAddress = "::1"; port = 9700; };
      openFirewall = true;
      requireAgent = true;
      mode = "audit";
      families = [ "inet" ];
      wxMemory = "off";
      upstreams = { web = "127.0.0.1:8080"; };
      settings = { grpc-socket = "/run/tunnelguard/other.sock"; detach-on-exit = true; };
    };
    systemd.services.cloudflared-tunnel-abc.serviceConfig.ExecStart = "${pkgs.cloudflared}/bin/cloudflared tunnel run abc";
    boot.kernelParams = [ "quiet" "lsm=landlock,yama,bpf" ];
  };
  cAgent = c.systemd.services.tunnelguard;
  cTunnel = c.systemd.services.cloudflared-tunnel-abc;
  cConf = c.environment.etc."tunnelguard/tunnelguard.conf".text;

  # 5. Priorities and merging with the unit's own settings.
  forced = eval ([ lsm {
    services.tunnelguard = { enable = true; units = [ "cloudflared-tunnel" ]; };
    systemd.services.cloudflared-tunnel = lib.recursiveUpdate realUserUnit { serviceConfig.MemoryDenyWriteExecute = lib.mkForce false; };
  } ]);
  conflicting = [ lsm {
    services.tunnelguard = { enable = true; units = [ "cloudflared-tunnel" ]; };
    systemd.services.cloudflared-tunnel = lib.recursiveUpdate realUserUnit { serviceConfig.RestrictAddressFamilies = "AF_UNIX AF_INET AF_INET6"; };
  } ];
  # The option of one-tunnel releases still works, with a warning naming its successor.
  renamed = eval ([ lsm {
    services.tunnelguard = { enable = true; tunnelUnit = "cloudflared-tunnel"; };
    systemd.services.cloudflared-tunnel = realUserUnit;
  } ]);

  # 6. The LSM list: lsm= without bpf fails closed; the opt-out builds, warns, and its gate
  #    ignores failure; no LSM information at all is the kernel's default: no warning.
  noBpf = eval ([ tunnels { services.tunnelguard.enable = true; boot.kernelParams = [ "lsm=landlock,yama" ]; security.lsm = [ "bpf" ]; } ]);
  optOut = eval ([ tunnels { services.tunnelguard = { enable = true; allowUnenforced = true; }; boot.kernelParams = [ "lsm=landlock,yama" ]; } ]);
  unknownLsm = eval ([ tunnels { services.tunnelguard.enable = true; } ]);
  off = eval [ lsm tunnels ];
  clash = eval ([ lsm tunnels { services.tunnelguard = { enable = true; settings.metrics-listen = "0.0.0.0:1"; }; } ]);

  # 7. The flake: its overlay provides pkgs.tunnelguard, its module adds the overlay.
  flake = (import ../../../flake.nix).outputs {
    self = flake;
    nixpkgs.legacyPackages.x86_64-linux = pkgs;
  };
  overlaid = removeAttrs pkgs [ "tunnelguard" ] // (flake.overlays.default overlaid pkgs);
  viaFlake = evalWith overlaid [ flake.nixosModules.default lsm tunnels { services.tunnelguard.enable = true; } ];
  noOverlay = evalWith (removeAttrs pkgs [ "tunnelguard" ]) [ module lsm tunnels { services.tunnelguard.enable = true; } ];
in
[
  (check "real user: agent ExecStart guards their unit" dAgent.serviceConfig.ExecStart (agentCmd [ "cloudflared-tunnel" ]))
  (check "real user: guardedUnits" d.services.tunnelguard.guardedUnits [ "cloudflared-tunnel" ])
  (check "agent ordered before the tunnel" dAgent.before [ "cloudflared-tunnel.service" ])
  (check "agent wanted by multi-user.target" dAgent.wantedBy [ "multi-user.target" ])
  (check "agent Type=notify" dAgent.serviceConfig.Type "notify")
  (check "agent WatchdogSec" dAgent.serviceConfig.WatchdogSec "30s")
  (check "agent capabilities" dAgent.serviceConfig.CapabilityBoundingSet "CAP_BPF CAP_PERFMON CAP_NET_ADMIN CAP_SYS_ADMIN")
  (check "agent SystemCallFilter (3 lines)" dAgent.serviceConfig.SystemCallFilter [ "@system-service bpf" "~@privileged @resources" "bpf capset seccomp" ])
  (check "agent sandbox = shipped unit, but ExecStart" (removeAttrs dAgent.serviceConfig [ "ExecStart" ]) (removeAttrs shipped.Service [ "ExecStart" ]))
  (check "agent RequiresMountsFor bpffs" dAgent.unitConfig.RequiresMountsFor "/sys/fs/bpf")
  (check "real user: tunnel after and wants the agent" [ (lib.elem "tunnelguard.service" dTunnel.after) (lib.sort lib.lessThan dTunnel.wants) ] [ true [ "network-online.target" "tunnelguard.service" ] ])
  (check "tunnel does not require agent by default" dTunnel.requires [ ])
  (check "real user: gate first, then their own ExecStartPre" dTunnel.serviceConfig.ExecStartPre [ gate userPre ])
  (check "real user: their ExecStart kept" dTunnel.serviceConfig.ExecStart realUserUnit.serviceConfig.ExecStart)
  (check "real user: their sandbox kept" (lib.getAttrs [ "User" "PrivatePIDs" "PrivateUsers" "ProtectSystem" "CapabilityBoundingSet" ] dTunnel.serviceConfig)
    (lib.getAttrs [ "User" "PrivatePIDs" "PrivateUsers" "ProtectSystem" "CapabilityBoundingSet" ] realUserUnit.serviceConfig))
  (check "real user: equal RestrictAddressFamilies merge" dTunnel.serviceConfig.RestrictAddressFamilies "AF_INET AF_INET6")
  (check "real user: equal MemoryDenyWriteExecute merge" dTunnel.serviceConfig.MemoryDenyWriteExecute true)
  (check "real user: no failed assertion" (failed d) [ ])
  (check "real user: no warning" d.warnings [ ])
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

  (check "nixpkgs tunnels: both guarded" two.services.tunnelguard.guardedUnits [ "cloudflared-tunnel-home" "cloudflared-tunnel-lab" ])
  (check "nixpkgs tunnels: one agent, two --unit" two.systemd.services.tunnelguard.serviceConfig.ExecStart (agentCmd [ "cloudflared-tunnel-home" "cloudflared-tunnel-lab" ]))
  (check "nixpkgs tunnels: agent before both" two.systemd.services.tunnelguard.before [ "cloudflared-tunnel-home.service" "cloudflared-tunnel-lab.service" ])
  (check "nixpkgs tunnels: each has the gate" (map (u: two.systemd.services.${u}.serviceConfig.ExecStartPre) [ "cloudflared-tunnel-home" "cloudflared-tunnel-lab" ]) [ [ gate ] [ gate ] ])
  (check "nixpkgs tunnels: their unit kept" (lib.getAttrs [ "DynamicUser" "Restart" "RuntimeDirectory" "LoadCredential" ] twoHome.serviceConfig)
    { DynamicUser = true; Restart = "on-failure"; RuntimeDirectory = "cloudflared-tunnel-home"; LoadCredential = [ "credentials.json:/var/lib/cloudflared/home.json" ]; })
  (check "nixpkgs tunnels: ordering merged" twoHome.after [ "network.target" "network-online.target" "tunnelguard.service" ])
  (check "nixpkgs tunnels: policy on the unit" [ twoHome.serviceConfig.RestrictAddressFamilies twoHome.serviceConfig.MemoryDenyWriteExecute ] [ "AF_INET AF_INET6" true ])
  (check "nixpkgs tunnels: no assertion, no warning" [ (failed two) two.warnings ] [ [ ] [ ] ])
  (check "nixpkgs tunnels + own unit: three guarded" three.services.tunnelguard.guardedUnits [ "cloudflared-tunnel-home" "cloudflared-tunnel-lab" "cloudflared-tunnel" ])
  (check "own unit only: nixpkgs tunnels left alone" [ ownOnly.services.tunnelguard.guardedUnits (ownOnly.systemd.services.cloudflared-tunnel-home.serviceConfig ? ExecStartPre) ] [ [ "cloudflared-tunnel" ] false ])

  (holds "typo: one assertion names the missing unit and the defined ones" (failed typo)
    (m: builtins.length m == 1 && contains "cloudflared-tunel.service would be guarded but has no ExecStart" (builtins.head m)
      && contains "defined: cloudflared-tunnel-home, cloudflared-tunnel-lab" (builtins.head m)))
  (holds "nothing to guard: one assertion says how" (failed nothing) (m: builtins.length m == 1 && contains "no tunnel unit to guard" (builtins.head m)))

  (check "custom ExecStart (IPv6, port, unit)" cAgent.serviceConfig.ExecStart "${pkg}/bin/tunnelguard run --config /etc/tunnelguard/tunnelguard.conf --unit cloudflared-tunnel-abc.service --metrics-listen [::1]:9700")
  (check "custom: tunnel requires agent" cTunnel.requires [ "tunnelguard.service" ])
  (check "custom: families" cTunnel.serviceConfig.RestrictAddressFamilies "AF_INET")
  (check "custom: W^X off" cTunnel.serviceConfig.MemoryDenyWriteExecute false)
  (check "custom: firewall" c.networking.firewall.allowedTCPPorts [ 9700 ])
  (check "custom: remote scrapers allowed" cAgent.serviceConfig.IPAddressAllow "any")
  (check "custom: LAN listener waits for the network" [ cAgent.after cAgent.wants ] [ [ "network-online.target" ] [ "network-online.target" ] ])
  (check "default: loopback listener does not wait for the network" [ dAgent.after dAgent.wants ] [ [ ] [ ] ])
  (holds "custom: config has audit mode, upstream, settings" cConf (s: contains "\nmode = audit\n" s && contains "\nupstream = web=127.0.0.1:8080\n" s
    && contains "\ngrpc-socket = /run/tunnelguard/other.sock\n" s && contains "\ndetach-on-exit = true\n" s))
  (check "custom: lsm= with bpf passes" (failed c) [ ])
  (holds "every config key is a `tunnelguard run` flag" (keysOf cConf ++ keysOf dConf) (builtins.all (k: builtins.elem k runFlags)))

  (check "mkForce on the unit wins over the module" forced.systemd.services.cloudflared-tunnel.serviceConfig.MemoryDenyWriteExecute false)
  (check "a different RestrictAddressFamilies on the unit is an evaluation error" (rejects conflicting) true)
  (check "tunnelUnit (old option) becomes units" renamed.services.tunnelguard.guardedUnits [ "cloudflared-tunnel" ])
  (holds "tunnelUnit (old option) warns, naming units" renamed.warnings (w: builtins.length w == 1 && contains "services.tunnelguard.units" (builtins.head w)))

  (holds "lsm= without bpf: assertion fails, names bpf" (failed noBpf) (m: builtins.length m == 1 && contains "lacks `bpf`" (builtins.head m)))
  (check "opt-out: builds" (failed optOut) [ ])
  (holds "opt-out: warns" optOut.warnings (w: builtins.length w == 1 && contains "unguarded" (builtins.head w)))
  (holds "opt-out: gate ignores failure, runs pkgs.runtimeShell, warns at crit" optOut.systemd.services.cloudflared-tunnel-home.serviceConfig.ExecStartPre
    (l: builtins.length l == 1 && contains "^-\\+${pkgs.runtimeShell} -c '${pkg}/bin/tunnelguard attach --unit %n --policy-from-unit [|][|] echo \"<2>" (builtins.head l)))
  (check "kernel's default LSM list: no assertion, no warning" [ (failed unknownLsm) unknownLsm.warnings ] [ [ ] [ ] ])
  (check "disabled: no agent, tunnels untouched, no config file" [ (off.systemd.services ? tunnelguard) (off.systemd.services.cloudflared-tunnel-home.serviceConfig ? ExecStartPre) off.environment.etc off.assertions ] [ false false { } [ ] ])
  (holds "settings may not repeat managed keys" (failed clash) (m: builtins.length m == 1 && contains "may not set" (builtins.head m)))
  (check "rejects mode = block" (rejects { services.tunnelguard = { enable = true; mode = "block"; }; }) true)
  (check "rejects port 70000" (rejects { services.tunnelguard = { enable = true; metrics.port = 70000; }; }) true)
  (check "rejects family ipx" (rejects { services.tunnelguard = { enable = true; families = [ "ipx" ]; }; }) true)
  (check "rejects an unknown option" (rejects { services.tunnelguard = { enable = true; mdoe = "audit"; }; }) true)
  (check "accepts a valid config (the reject checks can pass)" (rejects [ lsm tunnels { services.tunnelguard.enable = true; } ]) false)

  (check "flake: the overlay provides pkgs.tunnelguard" overlaid.tunnelguard.name "tunnelguard-from-source")
  (check "flake: its module adds the overlay" (builtins.length viaFlake.nixpkgs.overlays) 1)
  (check "flake: its module uses pkgs.tunnelguard" viaFlake.services.tunnelguard.package.name "tunnelguard-from-source")
  (check "no overlay: the package is built from this tree" noOverlay.services.tunnelguard.package.name "tunnelguard-from-source")
  (check "with pkgs.tunnelguard: mkPackageOption's default" d.services.tunnelguard.package.name "tunnelguard-0.1.0")
]
