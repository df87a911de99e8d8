// The one boundary between the engine and the CUDA code (DESIGN.md §2):
// plain types only, so that nvcc never sees Eigen or Rcpp. device.cu
// implements it with the CUDA runtime; device_stub.cpp, built when
// configure finds no usable nvcc, answers "built without CUDA".
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace lcnn {
namespace cuda {

// Whether devices can be used, and when not, what is missing.
enum class Availability {
  available,  // at least one device
  not_built,  // the package was built without CUDA
  no_driver,  // no NVIDIA driver is installed
  no_device,  // a driver but no device (or none visible, CUDA_VISIBLE_DEVICES)
  error       // the runtime failed otherwise: see DeviceReport::detail
};

struct Device {
  int index;                  // CUDA's device ordinal, from 0
  std::string name;
  std::size_t total_memory;   // bytes
  int major;                  // compute capability major.minor
  int minor;
};

struct DeviceReport {
  bool built_with_cuda;
  Availability availability;
  std::string detail;         // why no device, in words (CUDA's error string)
  int runtime_version;        // 1000 * major + 10 * minor, as CUDA; 0 when not built
  int driver_version;         // the newest CUDA the driver supports; 0 when none
  std::vector<Device> devices;  // empty unless available
};

// Queries the CUDA runtime each call. CUDA errors become the report's
// availability and detail; it never exits the process.
DeviceReport query_devices();

inline const char* availability_name(Availability availability) {
  switch (availability) {
    case Availability::available: return "available";
    case Availability::not_built: return "not_built";
    case Availability::no_driver: return "no_driver";
    case Availability::no_device: return "no_device";
    case Availability::error: return "error";
  }
  return "error";
}

}  // namespace cuda
}  // namespace lcnn
