// Runs every registered test; the last line is "N passed, N failed" and the
// exit status is non-zero when any check failed or a test threw.
#include <exception>
#include <iostream>

#include "check.hpp"

int main() {
  check::Registry& r = check::Registry::get();
  for (auto& [name, fn] : r.tests) {
    r.current = name;
    r.reported_in_current = 0;
    const long failed_before = r.failed;
    try {
      fn();
    } catch (const std::exception& e) {
      ++r.failed;
      std::cout << "FAIL [" << name << "] uncaught exception: " << e.what() << "\n";
    } catch (...) {
      ++r.failed;
      std::cout << "FAIL [" << name << "] uncaught non-std exception\n";
    }
    std::cout << (r.failed == failed_before ? "ok   " : "FAIL ") << name << "\n";
  }
  std::cout << r.passed << " passed, " << r.failed << " failed" << std::endl;
  return r.failed == 0 ? 0 : 1;
}
