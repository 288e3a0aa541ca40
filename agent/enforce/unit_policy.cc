#include "agent/enforce/unit_policy.h"

#include <fmt/format.h>
#include <sys/socket.h>

#include "agent/enforce/families.h"
#include "bpf/policy_families.h"

namespace tg {

namespace {

// sd_notify needs AF_UNIX; a notify unit that allows it for that gets it for that alone.
void NarrowForNotify(std::string_view service_type, bool allow_list, UnitPolicy& p) {
  const bool notify = service_type == "notify" || service_type == "notify-reload";
  if (!notify || !allow_list || !p.allowed_families) return;
  if (((*p.allowed_families >> AF_UNIX) & 1) == 0) return;
  *p.allowed_families &= ~(uint64_t{1} << AF_UNIX);
  *p.allowed_families |= uint64_t{1} << TG_FAM_UNIX_NOTIFY_BIT;
  p.summary += ", Type=" + std::string(service_type) + ": AF_UNIX narrowed to sd_notify (" +
               std::string(kUnixNotifyToken) + ")";
}

}  // namespace

Result<UnitPolicy> PolicyFromDirectives(const std::string& unit,
                                        const SystemdUnit::AddressFamilies& families, bool mdwe,
                                        std::string_view service_type) {
  UnitPolicy p;
  p.wx_memory = mdwe;
  const std::string listed = fmt::format("{}", fmt::join(families.names, " "));
  const bool restricts = families.allow_list || !families.names.empty();
  if (restricts) {
    uint64_t named = 0;
    if (!families.names.empty()) {
      auto mask = ParseFamilies(fmt::format("{}", fmt::join(families.names, ",")));
      if (!mask.ok()) {
        return MakeError(ErrorKind::kInvalidArgument,
                         unit + " has RestrictAddressFamilies=" + listed +
                             ", which tunnelguard cannot map: " + mask.error().message);
      }
      named = *mask;
    }
    uint64_t all = 0;
    for (const FamilyName& f : KnownFamilies()) all |= uint64_t{1} << f.family;
    p.allowed_families = families.allow_list ? named : (all & ~named);
    p.summary =
        "RestrictAddressFamilies=" +
        (families.allow_list ? (listed.empty() ? std::string("none") : listed) : "~" + listed);
  } else {
    p.summary = "RestrictAddressFamilies= (not set)";
  }
  p.summary += std::string(", MemoryDenyWriteExecute=") + (mdwe ? "yes" : "no");
  NarrowForNotify(service_type, families.allow_list, p);
  if (!restricts && !mdwe) {
    return MakeError(ErrorKind::kInvalidArgument,
                     unit +
                         " sets neither RestrictAddressFamilies= nor MemoryDenyWriteExecute=; "
                         "set them in the unit or give --families/--wx-memory instead of "
                         "--policy-from-unit");
  }
  return p;
}

Result<UnitPolicy> ReadUnitPolicy(const SystemdUnit& unit) {
  auto families = unit.RestrictAddressFamilies();
  if (!families.ok()) return families.error();
  auto mdwe = unit.MemoryDenyWriteExecute();
  if (!mdwe.ok()) return mdwe.error();
  auto type = unit.ServiceType();
  if (!type.ok()) return type.error();
  return PolicyFromDirectives(unit.name(), *families, *mdwe, *type);
}

}  // namespace tg
