// Test stub: tflite::Model / GetModel / TFLITE_SCHEMA_VERSION as upstream names them.
#ifndef STUB_SCHEMA_GENERATED_H_
#define STUB_SCHEMA_GENERATED_H_

#include <stdint.h>
#include <string.h>

#define TFLITE_SCHEMA_VERSION (3)

namespace tflite {

struct Model {
  const unsigned char* data;
  uint32_t version() const {
    uint32_t v;  // the root table's first field of a .tflite is the version: not parsed here
    (void)data;
    v = TFLITE_SCHEMA_VERSION;
    return v;
  }
};

inline const Model* GetModel(const void* buf) {
  static Model model;
  model.data = static_cast<const unsigned char*>(buf);
  return &model;
}

}  // namespace tflite

#endif  // STUB_SCHEMA_GENERATED_H_
