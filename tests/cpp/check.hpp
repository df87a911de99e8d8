// A minimal test harness: TEST(name) registers a function, CHECK* macros
// count passed and failed checks, and the runner prints "N passed, N failed".
// No external dependency so the same files build on a GPU host without R.
#pragma once

#include <cmath>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace check {

struct Registry {
  std::vector<std::pair<std::string, std::function<void()>>> tests;
  long passed = 0, failed = 0;
  std::string current;
  int reported_in_current = 0;
  static Registry& get() {
    static Registry r;
    return r;
  }
};

struct Register {
  Register(const char* name, std::function<void()> fn) {
    Registry::get().tests.emplace_back(name, std::move(fn));
  }
};

// Records one check; prints at most 20 failures per test to keep logs short.
inline bool record(bool ok, const std::string& what, const char* file, int line) {
  Registry& r = Registry::get();
  if (ok) {
    ++r.passed;
    return true;
  }
  ++r.failed;
  if (++r.reported_in_current <= 20) {
    std::cout << "FAIL [" << r.current << "] " << file << ":" << line << ": " << what << "\n";
  }
  return false;
}

inline bool near(double a, double b, double tol) {
  return std::abs(a - b) <= tol * (1.0 + std::abs(b));
}

}  // namespace check

#define CHECK_CONCAT2(a, b) a##b
#define CHECK_CONCAT(a, b) CHECK_CONCAT2(a, b)

#define TEST(name)                                                              \
  static void name();                                                           \
  static ::check::Register CHECK_CONCAT(check_register_, name)(#name, name);    \
  static void name()

// CHECK_MSG(cond, stream-expression) records cond; the message is built lazily.
#define CHECK_MSG(cond, msg)                                                    \
  [&]() -> bool {                                                               \
    const bool check_ok_ = static_cast<bool>(cond);                             \
    if (check_ok_) return ::check::record(true, "", __FILE__, __LINE__);        \
    std::ostringstream check_os_;                                               \
    check_os_ << #cond << " -- " << msg;                                        \
    return ::check::record(false, check_os_.str(), __FILE__, __LINE__);         \
  }()

#define CHECK(cond) CHECK_MSG(cond, "")

#define CHECK_EQ(a, b) CHECK_MSG((a) == (b), "left " << (a) << ", right " << (b))

#define CHECK_NEAR(a, b, tol)                                                   \
  CHECK_MSG(::check::near((a), (b), (tol)), "left " << (a) << ", right " << (b))

#define CHECK_THROWS(expr, exception_type)                                      \
  [&]() -> bool {                                                               \
    bool check_right_ = false;                                                  \
    std::string check_other_ = "nothing thrown";                                \
    try {                                                                       \
      (void)(expr);                                                             \
    } catch (const exception_type&) {                                           \
      check_right_ = true;                                                      \
    } catch (const std::exception& e) {                                         \
      check_other_ = std::string("other exception: ") + e.what();               \
    } catch (...) {                                                             \
      check_other_ = "non-std exception";                                       \
    }                                                                           \
    return ::check::record(check_right_,                                        \
                           std::string(#expr " should throw " #exception_type   \
                                       " -- ") + check_other_,                  \
                           __FILE__, __LINE__);                                 \
  }()
