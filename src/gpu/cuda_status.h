// CUDA runtime errors as gemini Status values.
#pragma once

#include <cuda_runtime.h>

#include "common/status.h"

namespace gemini {

// Internal("<what>: <cuda error name>: <description>"), or OK for cudaSuccess.
Status CudaStatus(cudaError_t err, const char* what);

}  // namespace gemini

#define GEMINI_CUDA_RETURN_IF_ERROR(expr) \
  GEMINI_RETURN_IF_ERROR(::gemini::CudaStatus((expr), #expr))
