#!/usr/bin/env python3
"""Inference throughput through the Python module clip_cpp, beside the PyTorch peer in the same
process, and against bench_model's C++ figures for the same models (run from here).

    PYTHONPATH=build/python /usr/bin/python3 bench/bench_python.py [--models vit-b-32 rn50]
        [--precisions fp32 bf16] [--threads N] [--runs 5] [--bench-model build/bench/bench_model]
        [--json out.json]

Both sides run the same random weights (the peer's CLIP init, seeded; written to a temporary
safetensors file that clip_cpp loads), random images at batch 1, 8, 32 and the peer's short
prompts at batch 1, 32, 256; medians after a warm-up. The process keeps freed memory
(clip_cpp.keep_freed_memory_for_reuse(), what bench_model does), so the peer here is the tuned
one. "vs C++" is clip_cpp's rate over bench_model's: what the binding costs.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import clip_cpp

ROOT = Path(__file__).resolve().parents[1]


def median_seconds(fn, runs):
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def load_peer(path):
    import importlib.util
    spec = importlib.util.spec_from_file_location("torch_clip", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_safetensors(path, state):
    """A minimal F32 safetensors writer (header, then the tensors' bytes in order)."""
    header, offset, blobs = {}, 0, []
    for name, t in state.items():
        if not t.is_floating_point():
            continue
        data = t.detach().float().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for b in blobs:
            f.write(b)


def short_prompts(batch):
    """The peer's prompts: [sot, 5..9 random ids, eot, 0...]."""
    ids = torch.zeros(batch, 77, dtype=torch.long)
    for i in range(batch):
        n = 6 + i % 5
        ids[i, 0], ids[i, 1:n], ids[i, n] = 49406, torch.randint(1, 49000, (n - 1,)), 49407
    return ids


def cpp_figures(bench_model, models, precisions, threads, runs):
    """bench_model's own rates (no peer), keyed model/precision/tower/batch."""
    if not bench_model or not Path(bench_model).exists():
        return {}
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        cmd = [bench_model, "--no-peer", "--threads", str(threads), "--runs", str(runs), "--json", out.name,
               "--models", *models, "--precisions", *precisions]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        rows = json.load(open(out.name))["rows"]
    return {f"{r['model']}/{r['precision']}/{r['tower']}/{r['batch']}": r["ours_per_s"] for r in rows}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["vit-b-32", "rn50"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--image-batches", nargs="*", type=int, default=[1, 8, 32])
    parser.add_argument("--text-batches", nargs="*", type=int, default=[1, 32, 256])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--peer", default=str(ROOT.parent / "shared" / "peer" / "torch_clip.py"))
    parser.add_argument("--bench-model", default=str(ROOT / "build" / "bench" / "bench_model"))
    parser.add_argument("--json")
    args = parser.parse_args()

    clip_cpp.keep_freed_memory_for_reuse()
    torch.set_num_threads(args.threads)  # one libtorch: this is clip_cpp's thread count too
    torch_clip = load_peer(args.peer)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            torch.manual_seed(0)
            config = dict(torch_clip.CONFIGS[name])
            peer_model = torch_clip.CLIP(**config).eval()
            checkpoint = Path(tmp) / f"{name}.safetensors"
            write_safetensors(checkpoint, peer_model.state_dict())
            config_file = Path(tmp) / f"{name}.config.json"
            config_file.write_text(json.dumps(config))  # OpenAI's constructor arguments
            resolution = config["image_resolution"]
            for precision in args.precisions:
                ours = clip_cpp.create_model(str(checkpoint), config=str(config_file), precision=precision,
                                             threads=args.threads)
                autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
                cases = [("image", b, torch.randn(b, 3, resolution, resolution)) for b in args.image_batches]
                cases += [("text", b, short_prompts(b)) for b in args.text_batches]
                for tower, batch, x in cases:
                    encode_ours = ours.encode_image if tower == "image" else ours.encode_text
                    encode_peer = peer_model.encode_image if tower == "image" else peer_model.encode_text
                    s_ours = median_seconds(lambda: encode_ours(x), args.runs)
                    with torch.inference_mode(), autocast:
                        s_peer = median_seconds(lambda: encode_peer(x), args.runs)
                    rows.append(dict(model=name, precision=precision, tower=tower, batch=batch,
                                     clip_cpp_per_s=batch / s_ours, peer_per_s=batch / s_peer))
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
                del ours
    cpp = cpp_figures(args.bench_model, args.models, args.precisions, args.threads, args.runs)
    print(f"threads {args.threads}, runs {args.runs} (medians); per second")
    print(f"{'model':<9}{'prec':<6}{'tower':<7}{'batch':>6}{'clip_cpp':>11}{'C++':>11}{'vs C++':>8}{'peer':>11}{'vs peer':>9}")
    for r in rows:
        key = f"{r['model']}/{r['precision']}/{r['tower']}/{r['batch']}"
        r["cpp_per_s"] = cpp.get(key)
        vs_cpp = f"{r['clip_cpp_per_s'] / r['cpp_per_s']:7.3f}x" if r["cpp_per_s"] else "      -"
        print(f"{r['model']:<9}{r['precision']:<6}{r['tower']:<7}{r['batch']:>6}{r['clip_cpp_per_s']:>11.2f}"
              f"{(r['cpp_per_s'] or float('nan')):>11.2f}{vs_cpp:>8}{r['peer_per_s']:>11.2f}"
              f"{r['clip_cpp_per_s'] / r['peer_per_s']:>8.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(threads=args.threads, runs=args.runs, torch=torch.__version__, rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
