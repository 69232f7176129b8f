// What this CPU's oneDNN can compute, asked once: CPUs differ (an AVX2-only EPYC has neither
// bf16 products nor VNNI), and the fast paths must not assume the machine they were written on.
#pragma once

#include <string>

namespace clip::model {

// Whether oneDNN has a bf16 matrix product here (AVX-512 or newer). Without it, bf16 work takes
// libtorch's own kernels (slower, same results within bf16 rounding).
bool onednn_bf16_available();

// Whether oneDNN's s8 products are exact here (VNNI: AVX-512 VNNI or AVX-VNNI). Without VNNI,
// oneDNN multiplies int8 through 16-bit sums that saturate, so precision int8 is refused.
bool onednn_int8_exact();

// oneDNN's name for the instruction set it uses, for messages ("avx2", "avx512_core_vnni", ...).
std::string onednn_isa_name();

// Throws clip::Error (kUnsupported) naming the instruction set when precision int8 cannot run
// here; `what` says what asked for it.
void require_int8_support(const std::string& what);

}  // namespace clip::model
