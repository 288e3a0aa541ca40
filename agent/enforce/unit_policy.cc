#include "agent/enforce/unit_policy.h"

#include <fmt/format.h>

#include "agent/enforce/families.h"

namespace tg {

Result<UnitPolicy> PolicyFromDirectives(const std::string& unit,
                                        const SystemdUnit::AddressFamilies& families, bool mdwe) {
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
  return PolicyFromDirectives(unit.name(), *families, *mdwe);
}

}  // namespace tg
