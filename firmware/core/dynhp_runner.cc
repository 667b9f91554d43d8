// Portable model runner. Depends on TFLM and on dynhp_platform.h only, so the
// same file builds for ESP-IDF, Arduino mbed and a PC (firmware/host).
//
// What it proves on the device: the embedded model loads, exactly the ops it
// registers are enough, the arena size measured on the host (plus the board's
// margin) is enough, and the outputs equal the outputs TFLM produced on the
// host for the same inputs.
//
// Tolerance: int8 outputs may differ by DYNHP_TOLERANCE (1 LSB) because the
// optimized kernels (ESP-NN, CMSIS-NN) may round a requantization step
// differently from the reference kernels the host ran. The largest difference
// is always reported, so an exact match is visible as max_abs_diff == 0.
#include "dynhp_runner.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "model_config.h"
#include "model_data.h"
#include "model_ops.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"

// Some TFLM trees define this in schema_generated.h, older ones in version.h.
#ifndef TFLITE_SCHEMA_VERSION
#define TFLITE_SCHEMA_VERSION 3
#endif

namespace {

#if DYNHP_ARENA_STATIC
// In .bss: the linker, not the allocator, proves that it fits.
alignas(16) uint8_t g_arena_storage[DYNHP_ARENA_BYTES];
#endif

uint8_t* AcquireArena() {
#if DYNHP_ARENA_STATIC
  return g_arena_storage;
#else
  // Too large for static DRAM on this board: take it from the heap once, at
  // boot, while the heap is least fragmented. TFLM wants 16-byte alignment.
  void* raw = dynhp_platform_alloc(static_cast<size_t>(DYNHP_ARENA_BYTES) + 15u);
  if (raw == nullptr) return nullptr;
  uintptr_t p = reinterpret_cast<uintptr_t>(raw);
  p = (p + 15u) & ~static_cast<uintptr_t>(15u);
  return reinterpret_cast<uint8_t*>(p);
#endif
}

TfLiteType ExpectedType(int dtype) {
  return dtype == DYNHP_DTYPE_FLOAT32 ? kTfLiteFloat32 : kTfLiteInt8;
}

double OutputElement(const TfLiteTensor* t, size_t i) {
#if DYNHP_OUTPUT_DTYPE == DYNHP_DTYPE_FLOAT32
  return static_cast<double>(t->data.f[i]);
#else
  return static_cast<double>(t->data.int8[i]);
#endif
}

void Fail(dynhp_result_t* r, const char* stage, const char* message) {
  r->ok = 0;
  r->error_stage = stage;
  r->error_message = message;
}

// Appends to a fixed buffer; one JSON object per line, no heap use.
class JsonLine {
 public:
  JsonLine() : len_(0), first_(true) { Raw("{"); }

  void Str(const char* key, const char* value) {
    Key(key);
    Raw("\"");
    Raw(value);  // values are identifiers and hex: nothing to escape
    Raw("\"");
  }
  void Int(const char* key, long value) {
    Key(key);
    if (value < 0) {
      Raw("null");  // -1 from the platform layer: not measurable here
    } else {
      Fmt("%ld", value);
    }
  }
  void Num(const char* key, double value) {
    Key(key);
    if (isfinite(value)) {
      // Integer formatting only: newlib-nano's printf drops %g unless the
      // firmware links float printing in, and the line would end early.
      const char* sign = value < 0 ? "-" : "";
      double magnitude = fabs(value);
      unsigned long whole = static_cast<unsigned long>(magnitude);
      unsigned long frac =
          static_cast<unsigned long>((magnitude - static_cast<double>(whole)) * 1e9 + 0.5);
      if (frac >= 1000000000ul) {
        whole += 1;
        frac -= 1000000000ul;
      }
      Fmt("%s%lu.%09lu", sign, whole, frac);
    } else {
      Raw("null");
    }
  }
  void Bool(const char* key, bool value) {
    Key(key);
    Raw(value ? "true" : "false");
  }
  void Array(const char* key, const uint32_t* values, int n) {
    Key(key);
    Raw("[");
    for (int i = 0; i < n; ++i) Fmt(i ? ",%lu" : "%lu", static_cast<unsigned long>(values[i]));
    Raw("]");
  }
  void Open(const char* key) {
    Key(key);
    Raw("{");
    first_ = true;
  }
  void Close() {
    Raw("}");
    first_ = false;
  }
  void Null(const char* key) {
    Key(key);
    Raw("null");
  }
  void Emit() {
    Raw("}");
    dynhp_platform_write_line(buf_);
  }

 private:
  void Key(const char* key) {
    if (!first_) Raw(",");
    first_ = false;
    Raw("\"");
    Raw(key);
    Raw("\":");
  }
  void Raw(const char* s) { Fmt("%s", s); }
  void Fmt(const char* fmt, ...) {
    if (len_ >= sizeof(buf_) - 1) return;
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(buf_ + len_, sizeof(buf_) - len_, fmt, args);
    va_end(args);
    if (n > 0) {
      len_ += static_cast<size_t>(n);
      if (len_ > sizeof(buf_) - 1) len_ = sizeof(buf_) - 1;
    }
  }

  char buf_[1536];
  size_t len_;
  bool first_;
};

void AddMemory(JsonLine* j, const dynhp_memory_t& m) {
  j->Int("heap_free_bytes", m.heap_free_bytes);
  j->Int("heap_min_free_bytes", m.heap_min_free_bytes);
  j->Int("heap_largest_block_bytes", m.heap_largest_block_bytes);
  j->Int("stack_free_min_bytes", m.stack_free_min_bytes);
}

// The fields that identify a line: which board runs which model with which arena.
void AddIdentity(JsonLine* j, const char* event) {
  j->Str("event", event);
  j->Str("board", DYNHP_BOARD);
  j->Str("model", DYNHP_MODEL_NAME);
  j->Str("model_hash", DYNHP_MODEL_HASH);
  j->Int("model_bytes", static_cast<long>(g_model_data_len));
  j->Int("arena_bytes", DYNHP_ARENA_BYTES);
}

}  // namespace

void dynhp_print_boot(void) {
  dynhp_memory_t m;
  dynhp_platform_memory(&m);
  JsonLine j;
  AddIdentity(&j, "boot");
  j.Bool("arena_static", DYNHP_ARENA_STATIC != 0);
  AddMemory(&j, m);
  j.Emit();
}

void dynhp_run(dynhp_result_t* r) {
  memset(r, 0, sizeof(*r));
  r->ok = 1;
  r->arena_static = DYNHP_ARENA_STATIC;
  r->mismatch_sample = -1;
  r->mismatch_index = -1;
  dynhp_platform_memory(&r->memory_before);

  const tflite::Model* model = tflite::GetModel(g_model_data);
  if (model->version() != TFLITE_SCHEMA_VERSION) {
    Fail(r, "model", "flatbuffer schema version differs from this TFLM");
    return;
  }

  static ModelOpResolver resolver;
  if (RegisterModelOps(resolver) != kTfLiteOk) {
    Fail(r, "resolver", "an op could not be registered");
    return;
  }

  uint8_t* arena = AcquireArena();
  if (arena == nullptr) {
    Fail(r, "arena", "heap allocation of the arena failed");
    return;
  }

  static tflite::MicroInterpreter interpreter(model, resolver, arena, DYNHP_ARENA_BYTES);
  if (interpreter.AllocateTensors() != kTfLiteOk) {
    Fail(r, "allocate", "AllocateTensors failed: arena too small or op missing");
    return;
  }
  r->arena_used_bytes = interpreter.arena_used_bytes();

  TfLiteTensor* input = interpreter.input(0);
  TfLiteTensor* output = interpreter.output(0);
  if (input == nullptr || output == nullptr) {
    Fail(r, "tensors", "model has no input or output tensor");
    return;
  }
  if (input->type != ExpectedType(DYNHP_INPUT_DTYPE) ||
      input->bytes != DYNHP_INPUT_ELEMENTS * sizeof(dynhp_input_t)) {
    Fail(r, "tensors", "input tensor type or size differs from the golden data");
    return;
  }
  if (output->type != ExpectedType(DYNHP_OUTPUT_DTYPE) ||
      output->bytes != DYNHP_OUTPUT_ELEMENTS * sizeof(dynhp_output_t)) {
    Fail(r, "tensors", "output tensor type or size differs from the golden data");
    return;
  }

  r->golden_passed = 1;
  for (int s = 0; s < DYNHP_GOLDEN_COUNT; ++s) {
    memcpy(input->data.raw, &g_golden_inputs[s * DYNHP_INPUT_ELEMENTS], input->bytes);
    uint64_t t0 = dynhp_platform_micros();
    TfLiteStatus status = interpreter.Invoke();
    uint64_t t1 = dynhp_platform_micros();
    if (status != kTfLiteOk) {
      Fail(r, "invoke", "Invoke failed");
      r->golden_passed = 0;
      return;
    }
    r->inference_us[s] = static_cast<uint32_t>(t1 - t0);
    r->samples_run = s + 1;

    const dynhp_output_t* expected = &g_golden_outputs[s * DYNHP_OUTPUT_ELEMENTS];
    for (size_t i = 0; i < DYNHP_OUTPUT_ELEMENTS; ++i) {
      double want = static_cast<double>(expected[i]);
      double got = OutputElement(output, i);
      double diff = fabs(got - want);
      if (diff > r->max_abs_diff) r->max_abs_diff = diff;
      if (diff > DYNHP_TOLERANCE && r->mismatch_sample < 0) {
        r->golden_passed = 0;
        r->mismatch_sample = s;
        r->mismatch_index = static_cast<int>(i);
        r->mismatch_expected = want;
        r->mismatch_got = got;
      }
    }
  }
  dynhp_platform_memory(&r->memory_after);
}

void dynhp_print_summary(const dynhp_result_t* r) {
  JsonLine j;
  AddIdentity(&j, "summary");
  j.Bool("arena_static", r->arena_static != 0);
  j.Int("arena_used_bytes", static_cast<long>(r->arena_used_bytes));
  AddMemory(&j, r->ok ? r->memory_after : r->memory_before);
  j.Int("heap_free_before_arena_bytes", r->memory_before.heap_free_bytes);
  j.Array("inference_us", r->inference_us, r->samples_run);
  j.Int("golden_count", DYNHP_GOLDEN_COUNT);
  j.Int("samples_run", r->samples_run);
  j.Num("tolerance", DYNHP_TOLERANCE);
  j.Num("max_abs_diff", r->max_abs_diff);
  if (!r->ok) {
    j.Str("golden", "error");
    j.Str("error_stage", r->error_stage);
    j.Str("error", r->error_message);
  } else {
    j.Str("golden", r->golden_passed ? "passed" : "failed");
  }
  if (r->mismatch_sample >= 0) {
    j.Open("first_mismatch");
    j.Int("sample", r->mismatch_sample);
    j.Int("index", r->mismatch_index);
    j.Num("expected", r->mismatch_expected);
    j.Num("got", r->mismatch_got);
    j.Close();
  } else {
    j.Null("first_mismatch");
  }
  j.Emit();
}
