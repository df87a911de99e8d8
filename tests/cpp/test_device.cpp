// The CUDA boundary's device queries (src/cuda/device.hpp): the build the
// Makefile chose is the one linked, and what a machine reports hangs
// together. Without a usable device the per-device checks are skipped, with
// a printed reason.
#include <iostream>

#include "check.hpp"
#include "cuda/device.hpp"

using lcnn::cuda::Availability;

TEST(cuda_device_report) {
  const lcnn::cuda::DeviceReport report = lcnn::cuda::query_devices();
  CHECK_EQ(report.built_with_cuda, LCNN_TEST_CUDA == 1);
  CHECK_EQ(report.runtime_version > 0, report.built_with_cuda);
  CHECK_EQ(report.availability == Availability::not_built, !report.built_with_cuda);
  if (report.availability != Availability::available) {
    CHECK(report.devices.empty());
    CHECK(!report.detail.empty());
    CHECK_EQ(report.availability == Availability::no_driver, report.driver_version == 0 &&
                                                                 report.built_with_cuda);
    std::cout << "skipped: no CUDA device ("
              << lcnn::cuda::availability_name(report.availability) << ": " << report.detail
              << ")\n";
    return;
  }
  CHECK(!report.devices.empty());
  CHECK(report.detail.empty());
  CHECK(report.driver_version > 0);
  for (std::size_t i = 0; i < report.devices.size(); ++i) {
    const lcnn::cuda::Device& device = report.devices[i];
    std::cout << "device " << device.index << ": " << device.name << ", "
              << device.total_memory / (1024.0 * 1024 * 1024) << " GiB, compute capability "
              << device.major << "." << device.minor << "\n";
    CHECK_EQ(device.index, static_cast<int>(i));
    CHECK(!device.name.empty());
    CHECK(device.total_memory > 0);
    CHECK(device.major >= 1 && device.minor >= 0);
  }
}

TEST(cuda_availability_names) {
  CHECK_EQ(std::string(lcnn::cuda::availability_name(Availability::available)), "available");
  CHECK_EQ(std::string(lcnn::cuda::availability_name(Availability::not_built)), "not_built");
  CHECK_EQ(std::string(lcnn::cuda::availability_name(Availability::no_driver)), "no_driver");
  CHECK_EQ(std::string(lcnn::cuda::availability_name(Availability::no_device)), "no_device");
  CHECK_EQ(std::string(lcnn::cuda::availability_name(Availability::error)), "error");
}
