// The device queries of cuda/device.hpp with the CUDA runtime (linked
// statically, so this loads without a driver and reports its absence).
#include "device.hpp"

#include <cuda_runtime.h>

#include <string>
#include <utility>

namespace lcnn {
namespace cuda {

namespace {

DeviceReport unavailable(DeviceReport report, Availability availability, std::string detail) {
  report.availability = availability;
  report.detail = std::move(detail);
  report.devices.clear();
  // Clears the runtime's last error so a later query starts clean.
  cudaGetLastError();
  return report;
}

}  // namespace

DeviceReport query_devices() {
  DeviceReport report{true, Availability::available, "", 0, 0, {}};
  cudaRuntimeGetVersion(&report.runtime_version);
  cudaDriverGetVersion(&report.driver_version);
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  // CUDA documents a driver version of 0 as "no driver installed"; the
  // count then fails with the less telling "driver version is insufficient".
  if (report.driver_version == 0) {
    return unavailable(report, Availability::no_driver, "no NVIDIA driver is installed");
  }
  if (status == cudaErrorNoDevice || (status == cudaSuccess && count == 0)) {
    return unavailable(report, Availability::no_device,
                       std::string("cudaGetDeviceCount: ") + cudaGetErrorString(cudaErrorNoDevice));
  }
  if (status != cudaSuccess) {
    return unavailable(report, Availability::error,
                       std::string("cudaGetDeviceCount: ") + cudaGetErrorString(status));
  }
  for (int index = 0; index < count; ++index) {
    cudaDeviceProp properties;
    const cudaError_t queried = cudaGetDeviceProperties(&properties, index);
    if (queried != cudaSuccess) {
      return unavailable(report, Availability::error,
                         "cudaGetDeviceProperties(" + std::to_string(index) +
                             "): " + cudaGetErrorString(queried));
    }
    report.devices.push_back(
        {index, properties.name, properties.totalGlobalMem, properties.major, properties.minor});
  }
  return report;
}

}  // namespace cuda
}  // namespace lcnn
