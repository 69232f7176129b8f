#!/usr/bin/python3
"""Writes the small PyTorch checkpoint files under tests/data/checkpoints/ that the checkpoint
reader tests use (run once; the outputs are committed, tests never need Python).

Needs Debian's python3-torch (torch 1.13) and numpy:  /usr/bin/python3 tools/make_checkpoint_fixtures.py

Every file is deterministic (fixed values, no random numbers) except legacy.pt, whose storage
keys are memory addresses: it changes byte-wise on every run (its content does not).
"""
import collections
import io
import os
import pickle
import sys
import zipfile

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "checkpoints")


def base_state_dict():
    """A few small tensors covering dtypes and layouts; values are exact in every dtype."""
    sd = collections.OrderedDict()
    sd["a.weight"] = torch.arange(12, dtype=torch.float32).reshape(3, 4) / 8 - 0.75
    sd["a.bias"] = torch.tensor([0.5, -1.25, 3.0], dtype=torch.float16)
    sd["b.bf16"] = torch.tensor([[1.0, -2.0, 0.375], [4.5, 1e-3, -0.0]], dtype=torch.bfloat16)
    sd["b.num_batches_tracked"] = torch.tensor(42, dtype=torch.int64)
    # Non-contiguous: the transpose of a 3x4 matrix, saved through its storage with stride (1, 4).
    sd["t.transposed"] = (torch.arange(12, dtype=torch.float64).reshape(3, 4) - 5).t()
    # A view at a storage offset: rows 1: of a 3x2 int32 matrix.
    sd["v.offset"] = torch.tensor([[1, 2], [3, 4], [5, 6]], dtype=torch.int32)[1:]
    sd["m.mask"] = torch.tensor([True, False, True])
    sd["e.empty"] = torch.zeros(0, 3)
    sd["s.scalar"] = torch.tensor(2.5)
    return sd


def save(obj, name, **kw):
    path = os.path.join(OUT, name)
    torch.save(obj, path, **kw)
    return path


def save_via_buffer(obj, name):
    """torch.save into memory: the zip's top folder is then "archive", not the file's stem."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(buf.getvalue())


def rewrite_zip(src, dst, drop=None, replace=None):
    """Copies a torch zip, leaving out records whose name ends with `drop` and replacing the
    bytes of records ending with a key of `replace` (stored, not compressed, like torch)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            if drop and info.filename.endswith(drop):
                continue
            data = zin.read(info.filename)
            for suffix, new in (replace or {}).items():
                if info.filename.endswith(suffix):
                    data = new
            zout.writestr(info, data)


def main():
    os.makedirs(OUT, exist_ok=True)
    sd = base_state_dict()
    state_dict = save(sd, "state_dict.pt")

    # The same tensors in the legacy (pre-1.6) format.
    save(sd, "legacy.pt", _use_new_zipfile_serialization=False)

    # DDP: every key starts with "module.".
    save(collections.OrderedDict(("module." + k, v) for k, v in sd.items()), "module_prefixed.pt")

    # open_clip's training checkpoint: epoch, name, state_dict (DDP-prefixed), optimizer, scaler.
    # open_clip's cosine schedule computes lr with numpy, so param_groups hold numpy float64s.
    model = torch.nn.Linear(4, 3)
    with torch.no_grad():
        model.weight.copy_(sd["a.weight"])
        model.bias.copy_(sd["a.bias"].float())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98), eps=1e-6)
    model(torch.ones(2, 4)).sum().backward()
    opt.step()
    with torch.no_grad():  # keep the saved weights at known values (the optimizer state stays)
        model.weight.copy_(sd["a.weight"])
        model.bias.copy_(sd["a.bias"].float())
    for g in opt.param_groups:
        g["lr"] = 0.5 * (1 + np.cos(np.pi * 3 / 10)) * 1e-3
    ckpt = {
        "epoch": 3,
        "name": "tiny-run",
        "state_dict": collections.OrderedDict(("module." + k, v) for k, v in model.state_dict().items()),
        "optimizer": opt.state_dict(),
        "scaler": {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5,
                   "growth_interval": 2000, "_growth_tracker": 0},
    }
    save_via_buffer(ckpt, "open_clip.pt")

    # Other trainers keep the weights under "model".
    save({"model": collections.OrderedDict([("w", torch.ones(2, 2))]), "step": np.int64(100)}, "model_key.pt")

    # nn.Parameter objects (keep_vars=True) pickle through _rebuild_parameter; tied weights are one
    # object (memo), and a row view shares their storage at offset 2.
    w = torch.nn.Parameter(torch.arange(4, dtype=torch.float32).reshape(2, 2))
    save(collections.OrderedDict([("enc.weight", w), ("dec.weight", w), ("row", w.data[1])]), "tied_params.pt")

    # Not a state dict at all.
    save([torch.ones(2), 3, "x"], "list.pt")

    # A dict with no tensors anywhere.
    save({"epoch": 1, "lr": 0.1}, "no_tensors.pt")

    # A global outside the allow-list (os.system pickles as posix.system).
    save({"w": torch.ones(2), "hook": os.system}, "disallowed_global.pt")

    # Corrupt archives made from state_dict.pt.
    rewrite_zip(state_dict, os.path.join(OUT, "missing_record.pt"), drop="/data/0")
    # data/0 ("a.weight", 12 float32 = 48 bytes) cut to 40 bytes.
    with zipfile.ZipFile(state_dict) as z:
        rec = [n for n in z.namelist() if n.endswith("/data/0")][0]
        short = z.read(rec)[:40]
    rewrite_zip(state_dict, os.path.join(OUT, "short_storage.pt"), replace={"/data/0": short})

    # A pickle whose tensor claims a size/stride beyond its (correctly sized) storage: the
    # persistent id says 12 elements, the tensor asks for 4x4.
    with zipfile.ZipFile(state_dict) as z:
        pkl_name = [n for n in z.namelist() if n.endswith("/data.pkl")][0]
        pkl = z.read(pkl_name)
    # In data.pkl, a.weight's size (3, 4) and stride (4, 1) are BININT1 pairs: K\x03K\x04\x86 ...
    needle = b"K\x03K\x04\x86"
    assert pkl.count(needle) >= 1, "layout of data.pkl changed"
    bad = pkl.replace(needle, b"K\x04K\x04\x86", 1)
    rewrite_zip(state_dict, os.path.join(OUT, "bad_extent.pt"), replace={"/data.pkl": bad})

    for name in sorted(os.listdir(OUT)):
        print(f"{os.path.getsize(os.path.join(OUT, name)):8d}  {name}")


if __name__ == "__main__":
    sys.exit(main())
