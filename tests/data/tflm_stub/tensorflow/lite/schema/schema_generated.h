// Test stub: tflite::Model / GetModel as upstream names them. Leaves
// TFLITE_SCHEMA_VERSION undefined, as some TFLM trees do (the core has a fallback).
#ifndef STUB_SCHEMA_GENERATED_H_
#define STUB_SCHEMA_GENERATED_H_

#include <stdint.h>
#include <string.h>

namespace tflite {

struct Model {
  const unsigned char* data;
  // The real accessor reads the flatbuffer; .tflite files carry version 3.
  uint32_t version() const { return data != nullptr ? 3u : 0u; }
};

inline const Model* GetModel(const void* buf) {
  static Model model;
  model.data = static_cast<const unsigned char*>(buf);
  return &model;
}

}  // namespace tflite

#endif  // STUB_SCHEMA_GENERATED_H_
