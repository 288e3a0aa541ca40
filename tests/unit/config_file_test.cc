#include "agent/config/config_file.h"

#include <gtest/gtest.h>

namespace tg {
namespace {

TEST(ParseConfigText, ReadsKeysValuesCommentsAndQuotes) {
  auto r = ParseConfigText(
      "# tunnelguard.conf\n"
      "\n"
      "unit = cloudflared-tunnel.service\n"
      "  metrics-listen=127.0.0.1:9612  \n"
      "families = \"inet, inet6\"\n"
      "detach-on-exit = true",
      "t.conf");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[0].line, 3);
  EXPECT_EQ((*r)[0].key, "unit");
  EXPECT_EQ((*r)[0].value, "cloudflared-tunnel.service");
  EXPECT_EQ((*r)[1].key, "metrics-listen");
  EXPECT_EQ((*r)[1].value, "127.0.0.1:9612");
  EXPECT_EQ((*r)[2].value, "inet, inet6");
  EXPECT_EQ((*r)[3].line, 6);
  EXPECT_EQ((*r)[3].value, "true");
}

TEST(ParseConfigText, EmptyValueIsKept) {
  auto r = ParseConfigText("cgroup =\n", "t.conf");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].value, "");
}

struct BadCase {
  const char* text;
  const char* expected;  // a part of the message
};

class ParseConfigTextErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(ParseConfigTextErrors, NameTheFileAndLine) {
  auto r = ParseConfigText(GetParam().text, "t.conf");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_NE(r.error().message.find(GetParam().expected), std::string::npos) << r.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    All, ParseConfigTextErrors,
    ::testing::Values(BadCase{"ok = 1\njust words\n", "t.conf:2: expected 'key = value'"},
                      BadCase{"= value\n", "t.conf:1: missing key"},
                      BadCase{"Bad Key = 1\n", "t.conf:1: 'Bad Key' is not a key"},
                      BadCase{"a = \"open\n", "t.conf:1: unterminated quote"},
                      BadCase{"\x01\x02\n", "t.conf:1: expected"}));

}  // namespace
}  // namespace tg
