#!/usr/bin/python3
"""Expected pixels of open_clip's preprocess_cfg variants, made with Pillow (Debian's python3-pil 9.4).

open_clip's image_transform (transform.py) for inference, on PIL images, is torchvision over Pillow:
  shortest: Resize(n, interpolation) -> CenterCrop(n)
  squash:   Resize((n, n), interpolation)
  longest:  ResizeKeepRatio(n, longest=1) -> CenterCropOrPad(n, fill=fill_color)
then convert("RGB"). torchvision's PIL paths are Image.resize(size, filter), Image.crop and
ImageOps.expand (constant padding, the fill repeated per band), written out here with Pillow alone.
Writes tests/data/images/expected_cfg/<file>.<interpolation>.<mode>[.fill<f>].<n>.rgb8.npy (uint8 [n, n, 3]).
Run: /usr/bin/python3 tools/make_preprocess_cfg_fixtures.py
"""
import os

import numpy as np
from PIL import Image, ImageOps

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "images")
FILES = ["astronaut_q95.jpg", "chelsea_457x300.png", "jpeg_portrait_420.jpg", "astronaut_rgba.png",
         "camera_la.png", "camera_gray.png", "chelsea_120x80.png"]
FILTERS = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}
CASES = [("bilinear", "shortest", 0), ("bilinear", "squash", 0), ("bicubic", "squash", 0),
         ("bilinear", "longest", 0), ("bicubic", "longest", 128)]
SIZES = [32, 45]


def shortest(img, n, f):
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    new_long = int(n * long / short)  # torchvision _compute_resized_output_size
    size = (n, new_long) if w <= h else (new_long, n)
    img = img.resize(size, f)
    top = int(round((size[1] - n) / 2.0))
    left = int(round((size[0] - n) / 2.0))
    return img.crop((left, top, left + n, top + n))


def squash(img, n, f):
    return img.resize((n, n), f)


def longest(img, n, f, fill):
    w, h = img.size
    ratio = max(h / n, w / n)  # ResizeKeepRatio with longest=1: max(...) * 1 + min(...) * 0
    nh, nw = round(h / ratio), round(w / ratio)
    img = img.resize((nw, nh), f)
    if n > nw or n > nh:  # center_crop_or_pad
        pad = ((n - nw) // 2 if n > nw else 0, (n - nh) // 2 if n > nh else 0,
               (n - nw + 1) // 2 if n > nw else 0, (n - nh + 1) // 2 if n > nh else 0)
        img = ImageOps.expand(img, border=pad, fill=tuple([fill] * len(img.getbands())))
        if img.size == (n, n):
            return img
    top = int(round((img.size[1] - n) / 2.0))
    left = int(round((img.size[0] - n) / 2.0))
    return img.crop((left, top, left + n, top + n))


def main():
    out_dir = os.path.join(ROOT, "expected_cfg")
    os.makedirs(out_dir, exist_ok=True)
    for name in FILES:
        src = Image.open(os.path.join(ROOT, "files", name))
        src.load()
        for interp, mode, fill in CASES:
            for n in SIZES:
                f = FILTERS[interp]
                img = {"shortest": lambda: shortest(src, n, f), "squash": lambda: squash(src, n, f),
                       "longest": lambda: longest(src, n, f, fill)}[mode]()
                rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
                assert rgb.shape == (n, n, 3), (name, interp, mode, n, rgb.shape)
                tag = f".fill{fill}" if mode == "longest" else ""
                np.save(os.path.join(out_dir, f"{name}.{interp}.{mode}{tag}.{n}.rgb8.npy"), rgb)


if __name__ == "__main__":
    main()
