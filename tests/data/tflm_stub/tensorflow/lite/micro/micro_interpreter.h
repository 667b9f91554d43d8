// Test stub of tflite::MicroInterpreter with upstream's constructor and the
// methods the core calls. It does not run a model (see ../../../README.md).
#ifndef STUB_MICRO_INTERPRETER_H_
#define STUB_MICRO_INTERPRETER_H_

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model_config.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

typedef enum { kTfLiteNoType = 0, kTfLiteFloat32 = 1, kTfLiteInt8 = 9 } TfLiteType;

typedef union {
  int8_t* int8;
  float* f;
  void* raw;
} TfLitePtrUnion;

typedef struct {
  TfLiteType type;
  TfLitePtrUnion data;
  size_t bytes;
} TfLiteTensor;

namespace tflite {

class MicroResourceVariables;
class MicroProfilerInterface;

class MicroInterpreter {
 public:
  MicroInterpreter(const Model* model, const MicroOpResolver& op_resolver, uint8_t* tensor_arena,
                   size_t tensor_arena_size, MicroResourceVariables* resource_variables = nullptr,
                   MicroProfilerInterface* profiler = nullptr, bool preserve_all_tensors = false)
      : arena_(tensor_arena), arena_size_(tensor_arena_size) {
    (void)model;
    (void)op_resolver;
    (void)resource_variables;
    (void)profiler;
    (void)preserve_all_tensors;
  }

  TfLiteStatus AllocateTensors() {
    size_t in_bytes = DYNHP_INPUT_ELEMENTS * sizeof(dynhp_input_t);
    size_t out_bytes = DYNHP_OUTPUT_ELEMENTS * sizeof(dynhp_output_t);
    size_t out_offset = (in_bytes + 15u) & ~static_cast<size_t>(15u);
    used_ = out_offset + out_bytes;
    if (used_ > arena_size_ || (reinterpret_cast<uintptr_t>(arena_) & 15u) != 0) {
      return kTfLiteError;
    }
    input_.type = DYNHP_INPUT_DTYPE == DYNHP_DTYPE_FLOAT32 ? kTfLiteFloat32 : kTfLiteInt8;
    input_.data.raw = arena_;
    input_.bytes = in_bytes;
    output_.type = DYNHP_OUTPUT_DTYPE == DYNHP_DTYPE_FLOAT32 ? kTfLiteFloat32 : kTfLiteInt8;
    output_.data.raw = arena_ + out_offset;
    output_.bytes = out_bytes;
    return kTfLiteOk;
  }

  // Returns the golden output of the matching golden input.
  TfLiteStatus Invoke() {
    for (int s = 0; s < DYNHP_GOLDEN_COUNT; ++s) {
      if (memcmp(input_.data.raw, &g_golden_inputs[s * DYNHP_INPUT_ELEMENTS], input_.bytes) == 0) {
        memcpy(output_.data.raw, &g_golden_outputs[s * DYNHP_OUTPUT_ELEMENTS], output_.bytes);
        const char* corrupt = getenv("DYNHP_STUB_CORRUPT");
        if (corrupt != nullptr && corrupt[0] == '1' && s == DYNHP_GOLDEN_COUNT - 1) {
          dynhp_output_t* out = static_cast<dynhp_output_t*>(output_.data.raw);
          out[0] = static_cast<dynhp_output_t>(out[0] > 0 ? out[0] - 2 : out[0] + 2);
        }
        return kTfLiteOk;
      }
    }
    return kTfLiteError;
  }

  TfLiteTensor* input(size_t index) { return index == 0 ? &input_ : nullptr; }
  TfLiteTensor* output(size_t index) { return index == 0 ? &output_ : nullptr; }
  size_t arena_used_bytes() const { return used_; }

 private:
  uint8_t* arena_;
  size_t arena_size_;
  size_t used_ = 0;
  TfLiteTensor input_ = {};
  TfLiteTensor output_ = {};
};

}  // namespace tflite

#endif  // STUB_MICRO_INTERPRETER_H_
