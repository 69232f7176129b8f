#!/usr/bin/python3
"""Writes two small TorchScript archives under tests/data/checkpoints/ for the TorchScript reader
tests (run once; the outputs are committed, tests never need Python).

  hostile_setstate.jit.pt  A scripted module whose submodule `visual` defines __getstate__ /
                           __setstate__; its __setstate__ calls
                           torch.from_file(MARKER, shared=True, size=1), which creates the file
                           MARKER (a path relative to the current directory). torch.jit.load runs
                           it while loading: this script checks that it does, in a temporary
                           folder. CLIP++ must never create MARKER.
  scripted.jit.pt          A benign scripted (not traced) module: parameters, buffers, a plain
                           tensor attribute, a ModuleList, a List[int], an Optional, a script-class
                           object holding a tensor. Its state_dict is printed for the test.

Needs Debian's python3-torch (torch 1.13):  /usr/bin/python3 tools/make_hostile_torchscript.py
Both files are deterministic up to the zip timestamps torch writes.
"""
import argparse
import os
import subprocess
import sys
import tempfile
from typing import List, Optional, Tuple

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "checkpoints")


class Hostile(torch.nn.Module):
    """__setstate__ creates the file named by `marker`, which travels in the pickled state."""

    def __init__(self, marker: str):
        super().__init__()
        self.proj = torch.nn.Parameter(torch.arange(4.0).reshape(2, 2))
        self.marker = marker

    def forward(self, x):
        return x @ self.proj

    @torch.jit.export
    def __getstate__(self) -> Tuple[torch.Tensor, bool, str]:
        return (self.proj, self.training, self.marker)

    @torch.jit.export
    def __setstate__(self, state: Tuple[torch.Tensor, bool, str]) -> None:
        # The result is used so that the compiler keeps the call.
        created = torch.from_file(state[2], shared=True, size=1)
        self.proj = state[0] + created.sum() * 0
        self.training = state[1]
        self.marker = state[2]


class HostileRoot(torch.nn.Module):
    def __init__(self, marker: str):
        super().__init__()
        self.logit_scale = torch.nn.Parameter(torch.tensor(2.5))
        self.visual = Hostile(marker)

    def forward(self, x):
        return self.visual(x) * self.logit_scale


@torch.jit.script
class Holder:
    def __init__(self, t: torch.Tensor):
        self.t = t


class Block(torch.nn.Module):
    def __init__(self, k: int):
        super().__init__()
        self.ln = torch.nn.LayerNorm(2)
        with torch.no_grad():
            self.ln.weight.copy_(torch.tensor([1.0 + k, 2.0 + k]))
            self.ln.bias.copy_(torch.tensor([-0.5 * k, 0.25]))

    def forward(self, x):
        return self.ln(x)


class Scripted(torch.nn.Module):
    sizes: List[int]
    maybe: Optional[torch.Tensor]

    def __init__(self):
        super().__init__()
        self.logit_scale = torch.nn.Parameter(torch.tensor(2.5))
        self.register_buffer("input_resolution", torch.tensor(32, dtype=torch.int64))
        self.attn_mask = torch.full((2, 2), float("-inf")).triu(1)  # a plain attribute, not a buffer
        self.visual = torch.nn.Linear(2, 3)
        with torch.no_grad():
            self.visual.weight.copy_(torch.arange(6.0).reshape(3, 2) / 4)
            self.visual.bias.copy_(torch.tensor([0.5, -1.0, 2.0]))
        self.blocks = torch.nn.ModuleList([Block(0), Block(1)])
        self.sizes = [1, 2, 3]
        self.maybe = None
        self.scale = 0.5
        self.holder = Holder(torch.ones(3))

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return self.visual(x + self.attn_mask[0]) * self.logit_scale * self.scale + self.holder.t.sum()


def check_hostile_runs_in_torch(path: str, marker: str) -> None:
    """torch.jit.load in a fresh temporary folder must create the marker (the attack works)."""
    with tempfile.TemporaryDirectory() as tmp:
        code = f"import torch; torch.jit.load({os.path.abspath(path)!r}, map_location='cpu')"
        subprocess.run([sys.executable, "-c", code], cwd=tmp, check=True)
        if not os.path.exists(os.path.join(tmp, marker)):
            sys.exit(f"torch.jit.load({path}) did not create {marker}: the archive is not hostile")
    print(f"{path}: torch.jit.load creates {marker} (checked)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--marker", default="HOSTILE_CODE_RAN", help="file the hostile __setstate__ creates")
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    hostile = os.path.join(args.out, "hostile_setstate.jit.pt")
    torch.jit.script(HostileRoot(args.marker)).save(hostile)
    check_hostile_runs_in_torch(hostile, args.marker)

    scripted = os.path.join(args.out, "scripted.jit.pt")
    torch.jit.script(Scripted()).save(scripted)
    sd = torch.jit.load(scripted).state_dict()
    print(f"{scripted}: state_dict")
    for k, v in sd.items():
        print(f"  {k} {v.dtype} {list(v.shape)} {v.flatten().tolist()}")


if __name__ == "__main__":
    main()
