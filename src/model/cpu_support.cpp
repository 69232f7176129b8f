#include "model/cpu_support.h"

#include <oneapi/dnnl/dnnl.hpp>

#include "clip/error.h"
#include "model/fast_linear.h"

namespace clip::model {

bool onednn_bf16_available() {
  // Asked by making the smallest bf16 product: what oneDNN can build is the test, not CPU flags.
  static const bool available = [] {
    using dt = dnnl::memory::data_type;
    using tag = dnnl::memory::format_tag;
    try {
      const dnnl::matmul::primitive_desc pd(
          dnnl::matmul::desc(dnnl::memory::desc({16, 16}, dt::bf16, tag::ab),
                             dnnl::memory::desc({16, 16}, dt::bf16, tag::ab),
                             dnnl::memory::desc({16, 16}, dt::f32, tag::ab)),
          onednn_cpu_engine());
      return true;
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return available;
}

bool onednn_int8_exact() {
  const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  auto has = [isa](dnnl::cpu_isa wanted) {
    const auto bits = static_cast<unsigned>(wanted);
    return (isa & bits) == bits;
  };
  return has(dnnl::cpu_isa::avx512_core_vnni) || has(dnnl::cpu_isa::avx2_vnni);
}

std::string onednn_isa_name() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::sse41: return "sse41";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    default: return "isa " + std::to_string(static_cast<unsigned>(dnnl::get_effective_cpu_isa()));
  }
}

void require_int8_support(const std::string& what) {
  if (!onednn_int8_exact())
    throw Error(what + ": precision int8 needs a CPU with VNNI (AVX-512 VNNI or AVX-VNNI); this one runs oneDNN's " +
                    onednn_isa_name() +
                    " code, whose int8 products saturate 16-bit sums (wrong features). Use precision bf16 or fp32",
                ErrorKind::kUnsupported);
}

}  // namespace clip::model
