#!/usr/bin/python3
"""What a model name costs: a cold `clip embed --model NAME` whose files are in the Hugging Face
cache (laid out exactly as huggingface_hub writes it, in a temporary folder) against the same
command given the file's path. One new process per run, the two commands interleaved, medians of
--runs runs each; prints a table and JSON (also to --json FILE). The budget (docs/models.md):
a name adds at most 50 ms over a path.

    bench/bench_model_names.py --clip build/clip [--runs 15] [--model DIR_OR_SAFETENSORS] [--json out.json]

The model defaults to the tiny fixture (tests/data/fixtures/models/tiny-vit-f16.safetensors):
the difference measured is the name's resolution (the names table, the cache's refs and
snapshot links, open_clip_config.json), which does not grow with the model.
"""
import argparse
import hashlib
import resource
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"
NAME = "ViT-B-32/laion2b_s34b_b79k"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
TINY_CONFIG = {
    "model_cfg": {
        "embed_dim": 64,
        "quick_gelu": True,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 64},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    },
    "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]},
}


def blob_name(data):
    """huggingface_hub's blob name: the sha256 for LFS files, the git blob sha1 otherwise."""
    if len(data) > 1000:
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def put_in_cache(root, repo, file, data):
    folder = os.path.join(root, "models--" + repo.replace("/", "--"))
    etag = blob_name(data)
    os.makedirs(os.path.join(folder, "blobs"), exist_ok=True)
    os.makedirs(os.path.join(folder, "refs"), exist_ok=True)
    with open(os.path.join(folder, "blobs", etag), "wb") as f:
        f.write(data)
    snapshot = os.path.join(folder, "snapshots", COMMIT)
    os.makedirs(snapshot, exist_ok=True)
    os.symlink("../../blobs/" + etag, os.path.join(snapshot, file))
    with open(os.path.join(folder, "refs", "main"), "w") as f:
        f.write(COMMIT)
    return os.path.join(snapshot, file)


def timed(cmd, env):
    """(wall seconds, CPU seconds user + system) of one run of cmd."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        sys.exit("failed (%d): %s\n%s" % (r.returncode, " ".join(cmd), r.stderr.decode(errors="replace")))
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", default=os.path.join(ROOT, "build", "clip"), help="the clip binary")
    ap.add_argument("--runs", type=int, default=15, help="runs of each command (at least 10)")
    ap.add_argument("--model", default=os.path.join(ROOT, "tests/data/fixtures/models/tiny-vit-f16.safetensors"),
                    help="weights (safetensors) to put in the cache; a folder: its open_clip_config.json and "
                         "open_clip_model.safetensors")
    ap.add_argument("--json", help="also write the JSON here")
    a = ap.parse_args()
    if a.runs < 10:
        sys.exit("--runs must be at least 10")
    if os.path.isdir(a.model):
        weights = open(os.path.join(a.model, "open_clip_model.safetensors"), "rb").read()
        config = open(os.path.join(a.model, "open_clip_config.json"), "rb").read()
    else:
        weights = open(a.model, "rb").read()
        config = json.dumps(TINY_CONFIG).encode()

    tmp = tempfile.mkdtemp(prefix="bench_model_names_")
    try:
        cache = os.path.join(tmp, "hub")
        put_in_cache(cache, REPO, "open_clip_config.json", config)
        path = put_in_cache(cache, REPO, "open_clip_model.safetensors", weights)
        env = dict(os.environ, HOME=tmp, HF_HUB_CACHE=cache, HF_HUB_OFFLINE="1")
        for k in ("HF_HOME", "HF_TOKEN", "XDG_CACHE_HOME"):
            env.pop(k, None)
        out = os.path.join(tmp, "emb.npy")
        common = ["embed", "--text", "a photo of a cat", "--threads", "1", "--out", out]
        by_name = [a.clip] + common + ["--model", NAME]
        by_path = [a.clip] + common + ["--model", path]
        timed(by_name, env)  # page cache and the binary's pages warm for both
        timed(by_path, env)
        t_name, t_path = [], []
        for _ in range(a.runs):  # interleaved, so drifts of the machine hit both alike
            t_path.append(timed(by_path, env))
            t_name.append(timed(by_name, env))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    med = lambda runs, i: statistics.median(r[i] for r in runs)  # noqa: E731
    med_name, med_path = med(t_name, 0), med(t_path, 0)
    cpu_name, cpu_path = med(t_name, 1), med(t_path, 1)
    result = {
        "benchmark": "clip embed --model NAME (cache) vs --model PATH, one process per run",
        "name": NAME,
        "model_bytes": len(weights),
        "runs": a.runs,
        "median_path_ms": round(med_path * 1e3, 2),
        "median_name_ms": round(med_name * 1e3, 2),
        "added_ms": round((med_name - med_path) * 1e3, 2),
        "min_path_ms": round(min(r[0] for r in t_path) * 1e3, 2),
        "min_name_ms": round(min(r[0] for r in t_name) * 1e3, 2),
        # CPU time (user + system) is less disturbed than wall time by other work on the machine.
        "median_path_cpu_ms": round(cpu_path * 1e3, 2),
        "median_name_cpu_ms": round(cpu_name * 1e3, 2),
        "added_cpu_ms": round((cpu_name - cpu_path) * 1e3, 2),
        "budget_ms": 50,
    }
    print("%-28s %10s %10s %14s" % ("clip embed --model", "median ms", "min ms", "median CPU ms"))
    print("%-28s %10.1f %10.1f %14.1f" % ("PATH (snapshot file)", result["median_path_ms"], result["min_path_ms"],
                                          result["median_path_cpu_ms"]))
    print("%-28s %10.1f %10.1f %14.1f" % (NAME, result["median_name_ms"], result["min_name_ms"],
                                          result["median_name_cpu_ms"]))
    print("a name adds %.1f ms wall, %.1f ms CPU (medians; budget 50 ms), %d runs each"
          % (result["added_ms"], result["added_cpu_ms"], a.runs))
    print(json.dumps(result))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
