#!/usr/bin/python3
"""The Pillow side of bench_image: OpenAI CLIP's preprocessing exactly as the reference runs it
(Pillow 9.4 Image.open → resize(short side → n, BICUBIC) → crop → convert("RGB") → ToTensor →
Normalize), timed on the same files in the same run as CLIP++. Run with /usr/bin/python3.

    pillow_preprocess.py make  --out DIR PHOTO...            # the benchmark JPEGs
    pillow_preprocess.py bench --size 224 --threads N --runs R --repeat K FILE...   # JSON on stdout
    pillow_preprocess.py dump  --size 224 --out X.npy FILE...  # the model inputs, float32 [N,3,n,n]
"""
import argparse
import json
import os
import sys
import time

import numpy as np
from PIL import Image

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # numpy gives the same float32 values
    torch = None

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)
SIZES = [(640, 480), (1920, 1080), (4000, 3000)]

# The reference's steps up to convert("RGB") are written once, in the generator of the test data.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "images"))
from make_images import ref_rgb8 as load_rgb8  # noqa: E402


def to_input(rgb8):
    if torch is not None:
        x = torch.from_numpy(rgb8.copy()).permute(2, 0, 1).float() / 255.0
        return ((x - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]).numpy()
    x = rgb8.astype(np.float32).transpose(2, 0, 1) / np.float32(255)
    return (x - np.array(MEAN, np.float32)[:, None, None]) / np.array(STD, np.float32)[:, None, None]


def preprocess(args):
    path, n = args
    return to_input(load_rgb8(path, n))


def cmd_make(a):
    os.makedirs(a.out, exist_ok=True)
    made = []
    for k, photo in enumerate(a.photos):
        src = Image.open(photo).convert("RGB")
        for w, h in SIZES:
            path = os.path.join(a.out, f"{w}x{h}_{k}.jpg")
            src.resize((w, h), Image.BICUBIC).save(path, quality=90)
            made.append(path)
    print(json.dumps(made))


def cmd_bench(a):
    work = [(f, a.size) for f in a.files] * a.repeat
    if a.threads <= 1:
        run = lambda: [preprocess(x) for x in work]
        pool = None
    else:
        import multiprocessing

        pool = multiprocessing.Pool(a.threads)
        run = lambda: pool.map(preprocess, work, chunksize=1)
    run()  # warm up (and start the workers)
    times = []
    for _ in range(a.runs):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    if pool:
        pool.close()
    times.sort()
    med = times[len(times) // 2]
    print(json.dumps({"images": len(work), "seconds": med, "images_per_s": len(work) / med,
                      "pillow": Image.__version__, "torch": torch is not None}))


def cmd_dump(a):
    arr = np.stack([preprocess((f, a.size)) for f in a.files]).astype(np.float32)
    np.save(a.out, arr)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("--out", required=True)
    m.add_argument("photos", nargs="+")
    b = sub.add_parser("bench")
    b.add_argument("--size", type=int, default=224)
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--runs", type=int, default=5)
    b.add_argument("--repeat", type=int, default=1)
    b.add_argument("files", nargs="+")
    d = sub.add_parser("dump")
    d.add_argument("--size", type=int, default=224)
    d.add_argument("--out", required=True)
    d.add_argument("files", nargs="+")
    a = ap.parse_args()
    {"make": cmd_make, "bench": cmd_bench, "dump": cmd_dump}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
