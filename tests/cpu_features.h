// Tests of the oneDNN fast paths that a CPU may not have: they report themselves skipped, by
// name and reason, where the library itself falls back (bf16: libtorch's kernels) or refuses
// (int8 without VNNI); see src/model/cpu_support.h.
#pragma once

#include <gtest/gtest.h>

#include "model/cpu_support.h"

#define CLIP_SKIP_WITHOUT_ONEDNN_BF16()                                                                      \
  if (!clip::model::onednn_bf16_available())                                                                \
  GTEST_SKIP() << "this CPU has no oneDNN bf16 product (oneDNN ISA " << clip::model::onednn_isa_name()      \
               << "): bf16 runs libtorch's kernels here, whose roundings differ from the ones tested"

#define CLIP_SKIP_WITHOUT_INT8()                                                                             \
  if (!clip::model::onednn_int8_exact())                                                                    \
  GTEST_SKIP() << "precision int8 is refused on this CPU (oneDNN ISA " << clip::model::onednn_isa_name()    \
               << ", no VNNI: its int8 products saturate)"
