// Test stub: declares the MicroMutableOpResolver methods the generated
// model_ops.h may call, with upstream's names (tensorflow/tflite-micro,
// tensorflow/lite/micro/micro_mutable_op_resolver.h). Each call records its
// op name so a test program can print the registered ops.
#ifndef STUB_MICRO_MUTABLE_OP_RESOLVER_H_
#define STUB_MICRO_MUTABLE_OP_RESOLVER_H_

#include <stddef.h>

typedef enum { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;

namespace tflite {

class MicroOpResolver {
 public:
  virtual ~MicroOpResolver() {}
};

template <unsigned int tOpCount>
class MicroMutableOpResolver : public MicroOpResolver {
 public:
  const char* names[tOpCount > 0 ? tOpCount : 1];
  unsigned int count = 0;

#define STUB_OP(method, op) \
  TfLiteStatus method() { return Add(op); }
  STUB_OP(AddAbs, "ABS")
  STUB_OP(AddAdd, "ADD")
  STUB_OP(AddArgMax, "ARG_MAX")
  STUB_OP(AddArgMin, "ARG_MIN")
  STUB_OP(AddAveragePool2D, "AVERAGE_POOL_2D")
  STUB_OP(AddBatchToSpaceNd, "BATCH_TO_SPACE_ND")
  STUB_OP(AddCast, "CAST")
  STUB_OP(AddConcatenation, "CONCATENATION")
  STUB_OP(AddConv2D, "CONV_2D")
  STUB_OP(AddDepthwiseConv2D, "DEPTHWISE_CONV_2D")
  STUB_OP(AddDequantize, "DEQUANTIZE")
  STUB_OP(AddElu, "ELU")
  STUB_OP(AddExp, "EXP")
  STUB_OP(AddExpandDims, "EXPAND_DIMS")
  STUB_OP(AddFullyConnected, "FULLY_CONNECTED")
  STUB_OP(AddGather, "GATHER")
  STUB_OP(AddHardSwish, "HARD_SWISH")
  STUB_OP(AddL2Normalization, "L2_NORMALIZATION")
  STUB_OP(AddLeakyRelu, "LEAKY_RELU")
  STUB_OP(AddLogistic, "LOGISTIC")
  STUB_OP(AddMaximum, "MAXIMUM")
  STUB_OP(AddMaxPool2D, "MAX_POOL_2D")
  STUB_OP(AddMean, "MEAN")
  STUB_OP(AddMinimum, "MINIMUM")
  STUB_OP(AddMul, "MUL")
  STUB_OP(AddPack, "PACK")
  STUB_OP(AddPad, "PAD")
  STUB_OP(AddPadV2, "PADV2")
  STUB_OP(AddPrelu, "PRELU")
  STUB_OP(AddQuantize, "QUANTIZE")
  STUB_OP(AddReduceMax, "REDUCE_MAX")
  STUB_OP(AddRelu, "RELU")
  STUB_OP(AddRelu6, "RELU6")
  STUB_OP(AddReshape, "RESHAPE")
  STUB_OP(AddResizeBilinear, "RESIZE_BILINEAR")
  STUB_OP(AddResizeNearestNeighbor, "RESIZE_NEAREST_NEIGHBOR")
  STUB_OP(AddShape, "SHAPE")
  STUB_OP(AddSoftmax, "SOFTMAX")
  STUB_OP(AddSpaceToBatchNd, "SPACE_TO_BATCH_ND")
  STUB_OP(AddSplit, "SPLIT")
  STUB_OP(AddSplitV, "SPLIT_V")
  STUB_OP(AddSqueeze, "SQUEEZE")
  STUB_OP(AddStridedSlice, "STRIDED_SLICE")
  STUB_OP(AddSub, "SUB")
  STUB_OP(AddTanh, "TANH")
  STUB_OP(AddTranspose, "TRANSPOSE")
  STUB_OP(AddTransposeConv, "TRANSPOSE_CONV")
  STUB_OP(AddUnpack, "UNPACK")
#undef STUB_OP

 private:
  // Like upstream: fails when the resolver is full or the op is already there.
  TfLiteStatus Add(const char* op) {
    if (count >= tOpCount) return kTfLiteError;
    for (unsigned int i = 0; i < count; ++i) {
      if (names[i] == op) return kTfLiteError;
    }
    names[count++] = op;
    return kTfLiteOk;
  }
};

}  // namespace tflite

#endif  // STUB_MICRO_MUTABLE_OP_RESOLVER_H_
