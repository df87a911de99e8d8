// cuda/device.hpp for a build without CUDA (configure found no usable nvcc,
// or LCNN_CUDA=0): no devices, and why.
#include "device.hpp"

namespace lcnn {
namespace cuda {

DeviceReport query_devices() {
  return {false, Availability::not_built, "lcnn was built without CUDA", 0, 0, {}};
}

}  // namespace cuda
}  // namespace lcnn
