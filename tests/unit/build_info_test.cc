// tunnelguard_build_info and process_start_time_seconds, as a scrape sees them.
#include "exporter/build_info.h"

#include <gtest/gtest.h>

#include <chrono>

namespace tg::exporter {
namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

TEST(BuildInfoCollector, ConstantOneAndAStartTimeThatStaysPut) {
  const double before = Now();
  BuildInfoCollector c;
  const double after = Now();
  const auto first = c.Collect();
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].name, "tunnelguard_build_info");
  ASSERT_EQ(first[0].metric.size(), 1u);
  EXPECT_EQ(first[0].metric[0].gauge.value, 1);
  EXPECT_EQ(first[1].name, "process_start_time_seconds");
  EXPECT_EQ(first[1].type, prometheus::MetricType::Gauge);
  ASSERT_EQ(first[1].metric.size(), 1u);
  const double start = first[1].metric[0].gauge.value;
  EXPECT_GE(start, before);
  EXPECT_LE(start, after);
  // The start, not the scrape: a later scrape reports the same instant.
  EXPECT_EQ(c.Collect()[1].metric[0].gauge.value, start);
}

}  // namespace
}  // namespace tg::exporter
