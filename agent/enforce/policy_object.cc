#include "agent/enforce/policy_object.h"

#include <cerrno>
#include <cstdint>
#include <string>

#include "agent/base/log.h"
#include "agent/target/lsm_probe.h"

namespace tg {
namespace {

// The kernel's internal ENOTSUPP, which BPF_PROG_LOAD can leak for unsupported types.
constexpr int kKernelEnotsupp = 524;

// The section prefix of the programs that implement a mechanism.
std::string_view SectionPrefix(Mechanism m) {
  switch (m) {
    case Mechanism::kLsmCgroup:
      return "lsm_cgroup/";
    case Mechanism::kLsmGlobal:
      return "lsm/";
    case Mechanism::kObserve:
      return "tracepoint/";  // observe_hooks.h selects its programs per call instead
  }
  return "";
}

}  // namespace

Status PolicyObject::AttachToCgroup(int cgroup_fd) {
  if (mechanism_ != Mechanism::kLsmCgroup) {
    // Global programs (lsm_global, observe) filter by the cgroup in their cgroup array: fill it
    // before they attach, so no call from the target passes unfiltered.
    bpf_map* map = nullptr;
    bpf_object__for_each_map(map, obj_) {
      if (bpf_map__type(map) != BPF_MAP_TYPE_CGROUP_ARRAY) continue;
      const uint32_t key = 0;
      const uint32_t fd = static_cast<uint32_t>(cgroup_fd);
      if (const int err = bpf_map__update_elem(map, &key, sizeof(key), &fd, sizeof(fd), BPF_ANY);
          err != 0) {
        return FromLibbpf(err,
                          "cannot put the target cgroup into " + std::string(bpf_map__name(map)));
      }
    }
  }
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, obj_) {
    if (!bpf_program__autoload(prog)) continue;
    // observe: by section, per program (per-call exit tracepoints, or tp_btf/sys_exit).
    bpf_link* link = mechanism_ == Mechanism::kLsmGlobal ? bpf_program__attach_lsm(prog)
                     : mechanism_ == Mechanism::kObserve
                         ? bpf_program__attach(prog)
                         : bpf_program__attach_cgroup(prog, cgroup_fd);
    if (link == nullptr) {
      const int err = errno;
      links_.clear();  // detach what this call attached: all or nothing
      return FromErrno(err, std::string("cannot attach ") + std::string(PolicyName(kind_)) +
                                " program " + bpf_program__name(prog) + " to the cgroup");
    }
    links_.emplace_back(bpf_program__name(prog), BpfLink(link));
  }
  return Status::Ok();
}

std::vector<std::pair<std::string, bpf_link*>> PolicyObject::Links() const {
  std::vector<std::pair<std::string, bpf_link*>> out;
  for (const auto& [name, link] : links_) out.emplace_back(name, link.get());
  return out;
}

std::vector<std::pair<std::string, bpf_map*>> PolicyObject::Maps() const {
  std::vector<std::pair<std::string, bpf_map*>> out;
  bpf_map* map = nullptr;
  bpf_object__for_each_map(map, obj_) {
    if (bpf_map__is_internal(map)) continue;
    out.emplace_back(bpf_map__name(map), map);
  }
  return out;
}

Status SelectPrograms(bpf_object* obj, Mechanism m, std::string_view policy) {
  const std::string_view prefix = SectionPrefix(m);
  int selected = 0;
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, obj) {
    const std::string_view section = bpf_program__section_name(prog);
    const bool mine = section.substr(0, prefix.size()) == prefix;
    if (bpf_program__set_autoload(prog, mine) != 0) {
      return MakeError(ErrorKind::kInternal, "cannot select BPF programs (already loaded)");
    }
    selected += mine ? 1 : 0;
  }
  if (selected == 0) {  // every object carries programs for every mechanism: a build error
    return MakeError(ErrorKind::kInternal, "the " + std::string(policy) +
                                               " object has no programs for mechanism " +
                                               std::string(MechanismName(m)));
  }
  return Status::Ok();
}

Status LoadObject(bpf_object* obj, Mechanism m, std::string_view policy) {
  const bool debug = log::MaxLevel() >= log::Level::kDebug;
  const libbpf_print_fn_t previous = debug ? nullptr : libbpf_set_print(nullptr);
  const int err = bpf_object__load(obj);
  if (!debug) libbpf_set_print(previous);
  if (err == 0) return Status::Ok();
  const int e = -err;
  if (e == EPERM || e == EACCES || e == EOPNOTSUPP || e == kKernelEnotsupp) {
    Error error =
        MakeError(ErrorKind::kUnsupported,
                  "kernel refused " + std::string(MechanismName(m)) + " program: " + ErrnoName(e));
    error.sys_errno = e;
    return error;
  }
  Error error = FromErrno(e, "cannot load the " + std::string(policy) +
                                 " BPF programs (run with -v for the verifier's log)");
  return error;
}

Status WriteConfig(bpf_map* map, const void* value, size_t size, std::string_view policy) {
  const uint32_t key = 0;
  const int err = bpf_map__update_elem(map, &key, sizeof(key), value, size, BPF_ANY);
  if (err != 0) return FromLibbpf(err, "cannot write the " + std::string(policy) + " config");
  return Status::Ok();
}

}  // namespace tg
