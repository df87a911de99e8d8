// Glue for the CUDA device queries (cuda/device.hpp).
#include <Rcpp.h>

#include "cuda/device.hpp"

// [[Rcpp::export(.cuda_device_state)]]
Rcpp::List cuda_device_state() {
  const lcnn::cuda::DeviceReport report = lcnn::cuda::query_devices();
  const std::size_t count = report.devices.size();
  Rcpp::IntegerVector index(count), major(count), minor(count);
  Rcpp::CharacterVector name(count);
  // Bytes as doubles: a GPU's memory exceeds R's integers.
  Rcpp::NumericVector memory(count);
  for (std::size_t i = 0; i < count; ++i) {
    const lcnn::cuda::Device& device = report.devices[i];
    index[i] = device.index;
    name[i] = device.name;
    memory[i] = static_cast<double>(device.total_memory);
    major[i] = device.major;
    minor[i] = device.minor;
  }
  return Rcpp::List::create(
      Rcpp::_["built"] = report.built_with_cuda,
      Rcpp::_["availability"] = lcnn::cuda::availability_name(report.availability),
      Rcpp::_["detail"] = report.detail,
      Rcpp::_["runtime_version"] = report.runtime_version,
      Rcpp::_["driver_version"] = report.driver_version,
      Rcpp::_["devices"] = Rcpp::List::create(Rcpp::_["index"] = index, Rcpp::_["name"] = name,
                                              Rcpp::_["memory"] = memory,
                                              Rcpp::_["major"] = major, Rcpp::_["minor"] = minor));
}
