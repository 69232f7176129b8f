// PyTorch checkpoint files -> name -> tensor lists (libtorch part of the checkpoint readers).
//
//  * torch.save zip archives (`torch.save(model.state_dict())`, Hugging Face `pytorch_model.bin`,
//    open_clip training checkpoints): records read with libtorch's zip reader, data.pkl parsed by
//    our restricted unpickler (io/pickle.h: nothing is executed, globals are allow-listed).
//  * legacy (pre-1.6, non-zip) torch.save files: same pickle conventions, storages appended.
//  * TorchScript archives (OpenAI's released `.pt` files): read as data, never run. data.pkl
//    goes through the same restricted unpickler, with the scripted modules' `__torch__.*` classes
//    kept as inert objects whose attribute dicts are walked for tensors; storages come from the
//    data/ records as for torch.save. The archive's code (code/, and the __setstate__ methods
//    torch.jit.load would call) is never read or compiled, so a module that only its own
//    __setstate__ can rebuild is refused (ErrorKind::kUnsupported) with the safe alternatives.
//
// Tensors come back on the CPU with their stored dtype and layout (views and strides kept, as
// torch.load gives them). Every failure is a clip::Error naming the file (and record, tensor).
// See docs/checkpoints.md.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

namespace clip::io {

// torch::Tensor is at::Tensor.
using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// A torch.save file (zip archive, or the legacy format): the state dict at its top level, or
// under "state_dict" / "model" / "module" in a training checkpoint. Non-tensor entries are
// skipped; a "module." prefix common to every key is stripped. Pickle order.
NamedTensors read_torch_state_dict(const std::string& path);

// A TorchScript archive: the tensor attributes of every submodule, recursively, in state_dict
// order (including int64 scalar buffers such as input_resolution), without running its code. A
// scripted module's plain tensor attributes (not parameters or buffers) are listed too: only the
// code tells them apart. See pickle::find_module_tensors.
NamedTensors read_torchscript_state_dict(const std::string& path);

enum class CheckpointFormat { kSafetensors, kTorchZip, kTorchScript, kLegacyTorch, kUnknown };

// From the file's bytes, not its name: safetensors (u64 header length, then '{'), a zip
// archive (TorchScript when it has a constants.pkl or code/ record, else torch.save; a zip
// libtorch cannot open is reported as kTorchZip so that its reader names the problem), a legacy
// torch.save pickle. Throws clip::Error when the file cannot be opened.
CheckpointFormat detect_checkpoint_format(const std::string& path);
const char* checkpoint_format_name(CheckpointFormat f);

}  // namespace clip::io
