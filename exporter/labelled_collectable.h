// A Collectable that adds one label to every series of another: how the agent tells its tunnels
// apart (unit="cloudflared-tunnel-a.service") while each tunnel's collectors stay unaware of
// it. The server merges the families of the same name that several such collectables return.
#ifndef TUNNELGUARD_EXPORTER_LABELLED_COLLECTABLE_H_
#define TUNNELGUARD_EXPORTER_LABELLED_COLLECTABLE_H_

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <memory>
#include <string>
#include <vector>

namespace tg::exporter {

// `families` with {name="value"} added to each series, first among its labels.
std::vector<prometheus::MetricFamily> WithLabel(std::vector<prometheus::MetricFamily> families,
                                                const std::string& name, const std::string& value);

// Families of the same name joined into one (the first's help and type), in order of first
// appearance: the text format allows one block per name.
std::vector<prometheus::MetricFamily> MergeFamilies(std::vector<prometheus::MetricFamily> families);

class LabelledCollectable : public prometheus::Collectable {
 public:
  LabelledCollectable(std::shared_ptr<prometheus::Collectable> inner, std::string name,
                      std::string value)
      : inner_(std::move(inner)), name_(std::move(name)), value_(std::move(value)) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    return WithLabel(inner_->Collect(), name_, value_);
  }

 private:
  std::shared_ptr<prometheus::Collectable> inner_;
  std::string name_, value_;
};

}  // namespace tg::exporter

#endif  // TUNNELGUARD_EXPORTER_LABELLED_COLLECTABLE_H_
