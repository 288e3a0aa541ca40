// Errors as values. Every failure from the kernel, libbpf or the system is converted into an
// Error once, where it happens (FromErrno / FromLibbpf), and faces (CLI, gRPC, exporter) map
// Error::kind to their own codes at their boundary.
#ifndef TUNNELGUARD_AGENT_RESULT_H_
#define TUNNELGUARD_AGENT_RESULT_H_

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <variant>

namespace tg {

enum class ErrorKind {
  kInvalidArgument,  // the user asked for something malformed or impossible
  kNotFound,         // a named thing (cgroup, unit, pin) does not exist
  kUnsupported,      // the kernel or system lacks a feature we need
  kPermission,       // not root / missing capability
  kInternal,         // anything else: a bug or an unexpected system failure
};

struct Error {
  ErrorKind kind = ErrorKind::kInternal;
  std::string message;  // one line: the problem and, where we know it, the fix
  int sys_errno = 0;    // the errno behind it, 0 when none
};

inline Error MakeError(ErrorKind kind, std::string message) {
  return Error{kind, std::move(message), 0};
}

// "what: strerror(err)" with a kind derived from the errno.
inline Error FromErrno(int err, const std::string& what) {
  ErrorKind kind = ErrorKind::kInternal;
  switch (err) {
    case EPERM:
    case EACCES:
      kind = ErrorKind::kPermission;
      break;
    case ENOENT:
    case ESRCH:
      kind = ErrorKind::kNotFound;
      break;
    case EINVAL:
      kind = ErrorKind::kInvalidArgument;
      break;
    case EOPNOTSUPP:
    case ENOSYS:
      kind = ErrorKind::kUnsupported;
      break;
    default:
      break;
  }
  return Error{kind, what + ": " + std::strerror(err), err};
}

// libbpf returns -errno (or NULL with errno set); both become an Error here.
inline Error FromLibbpf(int ret, const std::string& what) {
  return FromErrno(ret < 0 ? -ret : (errno != 0 ? errno : EINVAL), what);
}

// A value or an Error. Small on purpose: C++20 has no std::expected yet.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Success or an Error, for operations that return nothing.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT
  static Status Ok() { return {}; }
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool ok_ = true;
};

}  // namespace tg

#endif  // TUNNELGUARD_AGENT_RESULT_H_
