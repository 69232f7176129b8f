#!/usr/bin/env python3
"""Writes the seed corpus of fuzz/fuzz_data.cpp (fuzz/seeds/data): one small valid input per
reader, prefixed with the byte that selects the reader (0 braces, 1 CSV, 2 IDX, 3 tar, 4 CIFAR
pickle). Standard library only."""
import gzip
import io
import os
import pickle
import struct
import tarfile

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz", "seeds", "data")
os.makedirs(out, exist_ok=True)


def write(name, mode, body):
    with open(os.path.join(out, name), "wb") as f:
        f.write(bytes([mode]) + body)


write("braces", 0, b"s/{000..003}-{a,{b,c}d}.tar")
write("csv", 1, b'filepath,title,label\na.png,"a cat, ""quoted""\nline",cat\nb.png,dog,1\n')
idx = struct.pack(">BBBBIII", 0, 0, 8, 3, 2, 2, 2) + bytes(range(8))
write("idx", 2, idx)
write("idx_gz", 2, gzip.compress(idx))
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
    for name, data in [("k/0.jpg", b"\xff\xd8\xff"), ("k/0.txt", b"a cat"), ("k/1.png", b"\x89PNG"),
                       ("k/1.json", b'{"captions": ["x", "y"]}'), ("k/1.cls", b"3")]:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
write("tar", 3, buf.getvalue())
# Without numpy: the dict layout of a CIFAR batch, with the labels and a bytes "data".
write("cifar", 4, pickle.dumps({"batch_label": "b", "labels": [1, 2], "data": b"\x00" * 16,
                                "label_names": ["a", "b"]}, protocol=2))
