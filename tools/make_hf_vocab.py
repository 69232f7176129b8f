#!/usr/bin/env python3
"""Writes a Hugging Face style vocab.json + merges.txt from OpenAI's bpe_simple_vocab_16e6.txt.gz,
the way CLIPTokenizer's files are laid out (merges.txt with a '#version' header). Used to make
tests/data/tokenizer/hf/, so that the test of the two formats compares against files made
independently of CLIP++'s own loader."""
import gzip
import json
import sys


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def main(gz_path, out_dir):
    merges = gzip.open(gz_path).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]
    merges = [tuple(m.split()) for m in merges]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    encoder = dict(zip(vocab, range(len(vocab))))
    with open(f"{out_dir}/vocab.json", "w", encoding="utf-8") as f:
        json.dump(encoder, f, ensure_ascii=False)
    with open(f"{out_dir}/merges.txt", "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
