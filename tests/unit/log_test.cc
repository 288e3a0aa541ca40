// agent/base/log: journald priority prefixes only when stderr is the journal (JOURNAL_STREAM).
#include "agent/base/log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace tg::log {
namespace {

// Puts a temporary file on stderr for the test's lifetime, then restores stderr.
class StderrToFile {
 public:
  StderrToFile() : saved_(::dup(STDERR_FILENO)) {
    char path[] = "/tmp/tg-log-test.XXXXXX";
    fd_ = ::mkstemp(path);
    ::unlink(path);
    ::dup2(fd_, STDERR_FILENO);
  }
  ~StderrToFile() {
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    ::close(fd_);
  }
  std::string DevIno() const {
    struct stat st {};
    ::fstat(fd_, &st);
    return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  }

 private:
  int saved_;
  int fd_ = -1;
};

TEST(StderrIsJournal, OnlyWhenJournalStreamNamesStderr) {
  StderrToFile err;
  EXPECT_TRUE(StderrIsJournal(err.DevIno().c_str()));
  EXPECT_FALSE(StderrIsJournal(nullptr));          // not started by systemd
  EXPECT_FALSE(StderrIsJournal("1:2"));            // systemd's stream, but stderr was redirected
  EXPECT_FALSE(StderrIsJournal("not-a-dev-ino"));  // malformed
  EXPECT_FALSE(StderrIsJournal(""));
}

}  // namespace
}  // namespace tg::log
