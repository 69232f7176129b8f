#!/usr/bin/python3
"""Builds tests/data/images: the image files the core tests need and what the reference
(Pillow 9.4 + the torchvision steps of OpenAI's CLIP) makes of them.

    /usr/bin/python3 tests/data/images/make_images.py [--fixtures ../shared/fixtures]

* files/      inputs: a subset of ../shared/fixtures/images (every mode, format and geometry case
              there), plus files made here for what the fixtures lack: WebP, GIF and BMP of every
              kind Pillow reads, PNG bit depths / palettes / interlacing / tRNS / eXIf, portrait
              and odd-sized JPEGs (row skipping), EXIF orientations, truncated and corrupt files,
              decompression bombs, wrong extensions.
* expected/   uint8 [n,n,3] .npy of the resized, cropped RGB (`<file>.<n>.rgb8.npy`, and
              `<file>.exif.<n>.rgb8.npy` after ImageOps.exif_transpose); float32 [3,n,n] model
              inputs (`<file>.<n>.f32.npy`) for a few. For fixture copies these are the fixture's
              own reference arrays; for the rest they are computed here with Pillow.
* manifest.json  per file: Pillow's mode and size, the sha256 of Image.open(f).convert("RGB"),
              the sizes with expected arrays, or the error Pillow raises.

The arrays come from Pillow, never from CLIP++.
"""
import argparse
import hashlib
import io
import json
import os
import shutil
import struct
import zlib

import numpy as np
from PIL import Image, ImageOps

HERE = os.path.dirname(os.path.abspath(__file__))
FILES = os.path.join(HERE, "files")
EXPECTED = os.path.join(HERE, "expected")

# Fixture files copied as they are (every mode, the odd geometries, the rejected ones).
FIXTURE_COPIES = [
    "chelsea.png", "rocket.jpg", "astronaut_q95.jpg", "astronaut_progressive.jpg", "chelsea_q75.jpg",
    "coffee_q90_444.jpg", "chelsea_457x300.png", "chelsea_120x80.png", "camera_gray.jpg",
    "camera_gray.png", "astronaut_rgba.png", "horse_rgba.png", "camera_la.png", "chelsea_palette.png",
    "palette_color_10x10.png", "palette_trns_5x3.png", "bilevel_10x10.png", "camera_16bit.png",
    "pixel_1x1.png", "strip_4000x10.png", "strip_10x4000.png", "chelsea_cmyk.jpg", "coffee_exif_rot6.jpg",
    "motorcycle_200x500.png", "rocket_640x128.png", "astronaut_224x224.png", "astronaut_225x225.png",
    "chelsea_truncated.jpg", "empty.png",
]
# Fixture copies whose float inputs are copied too.
FLOAT_COPIES = ["astronaut_q95.jpg", "camera_16bit.png", "chelsea_cmyk.jpg", "horse_rgba.png"]


# ----------------------------------------------------------------------------- the reference
def ref_rgb8(path, n, exif=False):
    """OpenAI CLIP's _transform(n) up to convert("RGB"), as torchvision runs it on Pillow."""
    with Image.open(path) as img:
        if exif:
            img = ImageOps.exif_transpose(img)
        w, h = img.size
        if w <= h:
            nw, nh = n, int(n * h / w)
        else:
            nw, nh = int(n * w / h), n
        img = img.resize((nw, nh), Image.BICUBIC) if (nw, nh) != (w, h) else img
        top, left = int(round((nh - n) / 2.0)), int(round((nw - n) / 2.0))
        return np.asarray(img.crop((left, top, left + n, top + n)).convert("RGB"), dtype=np.uint8)


def ref_input(rgb8):
    x = rgb8.astype(np.float32).transpose(2, 0, 1) / np.float32(255)
    mean = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)[:, None, None]
    std = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)[:, None, None]
    return ((x - mean) / std).astype(np.float32)


# ----------------------------------------------------------------------------- hand-made files
def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes(samples, bit_depth, color_type, plte=None, trns=None, interlace=False, extra=b""):
    """samples: uint array [h, w, channels] of values < 2**bit_depth."""
    h, w, ch = samples.shape

    def pack(row):  # row: [w, ch]
        flat = row.reshape(-1).astype(np.int64)
        if bit_depth == 16:
            return flat.astype(">u2").tobytes()
        if bit_depth == 8:
            return flat.astype(np.uint8).tobytes()
        per = 8 // bit_depth
        out = bytearray((len(flat) * bit_depth + 7) // 8)
        for i, v in enumerate(flat):
            out[i // per] |= int(v) << (8 - bit_depth * (i % per + 1))
        return bytes(out)

    raw = bytearray()
    if not interlace:
        for y in range(h):
            raw += b"\0" + pack(samples[y])
    else:
        for x0, y0, dx, dy in [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]:
            sub = samples[y0::dy, x0::dx]
            if sub.shape[0] == 0 or sub.shape[1] == 0:
                continue
            for y in range(sub.shape[0]):
                raw += b"\0" + pack(sub[y])
    out = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 1 if interlace else 0))
    out += extra
    if plte is not None:
        out += png_chunk(b"PLTE", bytes(plte))
    if trns is not None:
        out += png_chunk(b"tRNS", trns)
    out += png_chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + png_chunk(b"IEND", b"")
    return out


def bmp_bytes(w, h, bits, rows, palette=b"", compression=0, header_size=40, masks=None, top_down=False,
              masks_after_header=False, pixel_data=None):
    """rows: list of raw row payloads in file order (each padded here to 4 bytes)."""
    if pixel_data is None:
        stride = ((w * bits + 31) >> 3) & ~3
        pixel_data = b"".join(r + b"\0" * (stride - len(r)) for r in rows)
    if header_size == 12:
        info = struct.pack("<IHHHH", 12, w, h, 1, bits)
    else:
        info = struct.pack("<IiiHHIIiiII", header_size, w, -h if top_down else h, 1, bits, compression,
                           len(pixel_data), 2835, 2835, len(palette) // (3 if header_size == 12 else 4), 0)
        if header_size > 40:
            m = list(masks or (0, 0, 0, 0)) + [0] * 4
            info += struct.pack("<IIII", *m[:4])
            info += b"\0" * (header_size - len(info))
    extra = struct.pack("<III", *masks[:3]) if masks_after_header else b""
    offset = 14 + len(info) + len(extra) + len(palette)
    head = b"BM" + struct.pack("<IHHI", offset + len(pixel_data), 0, 0, offset)
    return head + info + extra + palette + pixel_data


def gif_blocks(data):
    """Splits a GIF into (header13, gct, [blocks...], trailer) with blocks as raw byte strings."""
    flags = data[10]
    pos = 13
    gct = b""
    if flags & 0x80:
        n = 3 << ((flags & 7) + 1)
        gct = data[pos:pos + n]
        pos += n
    blocks = []
    while pos < len(data) and data[pos] != 0x3B:
        start = pos
        if data[pos] == 0x21:
            pos += 2
        elif data[pos] == 0x2C:
            f = data[pos + 9]
            pos += 10
            if f & 0x80:
                pos += 3 << ((f & 7) + 1)
            pos += 1  # LZW minimum code size
        else:
            raise ValueError("unexpected GIF block")
        while data[pos] != 0:
            pos += data[pos] + 1
        pos += 1
        blocks.append(data[start:pos])
    return data[:13], gct, blocks


def exif_bytes(orientation):
    e = Image.Exif()
    e[0x0112] = orientation
    return e.tobytes()


def save(im, name, **kw):
    path = os.path.join(FILES, name)
    im.save(path, **kw)
    return path


def write(name, data):
    with open(os.path.join(FILES, name), "wb") as f:
        f.write(data)


def make_files(fx):
    src = lambda f: Image.open(os.path.join(fx, "images", f))
    chelsea = src("chelsea.png").convert("RGB")
    coffee = src("coffee.png").convert("RGB")
    astro = src("astronaut.png").convert("RGB")
    camera = src("camera_gray.png").convert("L")
    horse = src("horse_rgba.png").convert("RGBA")
    rng = np.random.default_rng(7)

    # --- JPEG: portrait and odd sizes (row skipping and column cropping in the decoder), 4:2:2,
    # progressive, grey, CMYK, EXIF orientations, a bomb header, truncations.
    portrait = coffee.transpose(Image.Transpose.ROTATE_90)  # 400x600
    save(portrait.resize((300, 450), Image.BICUBIC), "jpeg_portrait_420.jpg", quality=90)
    save(portrait.resize((257, 511), Image.BICUBIC), "jpeg_portrait_422.jpg", quality=88, subsampling=1)
    save(astro.resize((301, 603), Image.BICUBIC), "jpeg_progressive_portrait.jpg", quality=85, progressive=True)
    save(chelsea.resize((700, 233), Image.BICUBIC), "jpeg_wide_444.jpg", quality=92, subsampling=0)
    save(portrait.resize((600, 1400), Image.BICUBIC), "jpeg_big_portrait.jpg", quality=80)
    save(camera.resize((333, 199), Image.BICUBIC), "jpeg_gray_odd.jpg", quality=90)
    save(portrait.resize((200, 320), Image.BICUBIC).convert("CMYK"), "jpeg_cmyk_portrait.jpg", quality=90)
    for o in (2, 3, 5, 8):
        save(chelsea.resize((160, 100), Image.BICUBIC), f"jpeg_exif{o}.jpg", quality=90, exif=exif_bytes(o))
    with open(os.path.join(FILES, "jpeg_portrait_420.jpg"), "rb") as f:
        j = f.read()
    write("jpeg_no_eoi.jpg", j[:-2])
    write("jpeg_cut_header.jpg", j[:300])
    with open(os.path.join(FILES, "jpeg_progressive_portrait.jpg"), "rb") as f:
        p = f.read()
    write("jpeg_progressive_truncated.jpg", p[: len(p) * 6 // 10])
    sof = j.find(b"\xff\xc0")
    write("jpeg_bomb.jpg", j[: sof + 5] + struct.pack(">HH", 60000, 60000) + j[sof + 9:])
    write("jpeg_zero_width.jpg", j[: sof + 5] + struct.pack(">HH", 450, 0) + j[sof + 9:])

    # --- PNG variants Pillow cannot write.
    rgb = np.asarray(chelsea.resize((97, 61), Image.BICUBIC)).astype(np.uint32)
    noise16 = rng.integers(0, 256, size=rgb.shape, dtype=np.uint32)
    write("png_rgb16.png", png_bytes(rgb * 256 + noise16, 16, 2))
    a = np.linspace(0, 65535, 97, dtype=np.uint32)[None, :, None].repeat(61, 0)
    write("png_rgba16.png", png_bytes(np.concatenate([rgb * 257, a], 2), 16, 6))
    g = np.asarray(camera.resize((90, 70), Image.BICUBIC)).astype(np.uint32)[..., None]
    la_alpha = np.linspace(0, 65535, 90, dtype=np.uint32)[None, :, None].repeat(70, 0)
    write("png_la16.png", png_bytes(np.concatenate([g * 257, la_alpha], 2), 16, 4))
    write("png_gray2.png", png_bytes(g >> 6, 2, 0))
    write("png_gray4.png", png_bytes(g >> 4, 4, 0))
    write("png_gray1_interlaced.png", png_bytes(g >> 7, 1, 0, interlace=True))
    pal_img = chelsea.resize((75, 50), Image.BICUBIC)
    for bits in (1, 2, 4):
        q = pal_img.quantize(colors=1 << bits)
        idx = np.asarray(q).astype(np.uint32)[..., None]
        plte = q.getpalette()[: 3 << bits]
        write(f"png_pal{bits}.png", png_bytes(idx, bits, 3, plte=plte))
    q = pal_img.quantize(colors=16)
    write("png_pal4_interlaced.png", png_bytes(np.asarray(q).astype(np.uint32)[..., None], 4, 3,
                                               plte=q.getpalette()[:48], interlace=True))
    write("png_rgb_interlaced.png", png_bytes(rgb[:57, :83], 8, 2, interlace=True))
    idx = (np.arange(12 * 9).reshape(9, 12) * 7 % 220).astype(np.uint32)[..., None]
    write("png_short_palette.png", png_bytes(idx, 8, 3, plte=[10, 20, 30, 200, 100, 50, 0, 0, 255, 255, 255, 0]))
    write("png_gray_trns.png", png_bytes(g[:20, :30], 8, 0, trns=struct.pack(">H", 128)))
    write("png_rgb_trns.png", png_bytes(rgb[:20, :30], 8, 2, trns=struct.pack(">HHH", 10, 20, 30)))
    save(chelsea.resize((120, 80), Image.BICUBIC), "png_exif6.png", exif=exif_bytes(6))
    with open(os.path.join(FILES, "png_rgb16.png"), "rb") as f:
        pb = f.read()
    write("png_truncated.png", pb[: len(pb) // 2])
    write("png_bad_crc.png", pb[:29] + bytes([pb[29] ^ 0xFF]) + pb[30:])
    write("png_bomb.png", png_bytes(np.zeros((1, 1, 3), np.uint32), 8, 2)[:16] +
          struct.pack(">II", 20000, 20000) + b"\x08\x02\x00\x00\x00" +
          struct.pack(">I", zlib.crc32(b"IHDR" + struct.pack(">II", 20000, 20000) + b"\x08\x02\x00\x00\x00") & 0xFFFFFFFF) +
          png_chunk(b"IDAT", zlib.compress(b"\0" * 60001 * 4)) + png_chunk(b"IEND", b""))

    # --- GIF.
    gsrc = chelsea.resize((150, 100), Image.BICUBIC)
    save(gsrc.quantize(colors=200), "gif_palette.gif")
    save(camera.resize((80, 60), Image.BICUBIC), "gif_gray.gif")
    save(gsrc.quantize(colors=64), "gif_interlaced.gif", interlace=True)
    save(gsrc.quantize(colors=32), "gif_transparent.gif", transparency=5)
    frames = [gsrc.quantize(colors=64), gsrc.rotate(90).quantize(colors=64), gsrc.rotate(180).quantize(colors=64)]
    frames[0].save(os.path.join(FILES, "gif_animated.gif"), save_all=True, append_images=frames[1:], duration=100)
    buf = io.BytesIO()
    gsrc.resize((40, 30)).quantize(colors=16).save(buf, "GIF", transparency=3, interlace=False)
    head, gct, blocks = gif_blocks(buf.getvalue())
    for name, trns in (("gif_offset.gif", False), ("gif_offset_trns.gif", True)):
        out_blocks = []
        for b in blocks:
            if b[0] == 0x21 and b[1] == 0xF9 and not trns:
                b = b[:3] + bytes([b[3] & ~1]) + b[4:]
            if b[0] == 0x2C:
                b = b[:1] + struct.pack("<HH", 10, 7) + b[5:]
            out_blocks.append(b)
        write(name, head[:6] + struct.pack("<HH", 60, 45) + head[10:] + gct + b"".join(out_blocks) + b";")
    # Global table moved into the image (local palette), and a grey-ramp local table over a
    # colour global one (Pillow then reads L).
    gflags = head[10]
    bits = (gflags & 7) + 1
    local = []
    ramp = []
    for b in blocks:
        if b[0] == 0x2C:
            desc = b[:9] + bytes([0x80 | (bits - 1)])
            local.append(desc + gct + b[10:])
            ramp.append(desc + bytes(v for i in range(1 << bits) for v in (i, i, i)) + b[10:])
        else:
            local.append(b)
            ramp.append(b)
    write("gif_local_palette.gif", head[:10] + bytes([gflags & 0x7F]) + head[11:] + b"".join(local) + b";")
    write("gif_ramp_local.gif", head + gct + b"".join(ramp) + b";")
    with open(os.path.join(FILES, "gif_palette.gif"), "rb") as f:
        gb = f.read()
    write("gif_truncated.gif", gb[: len(gb) // 2])
    write("gif_bomb.gif", gb[:6] + struct.pack("<HH", 65535, 65535) + gb[10:])
    write("gif_no_frame.gif", gb[:13 + (3 << ((gb[10] & 7) + 1))] + b";")

    # --- WebP.
    save(chelsea.resize((225, 150), Image.BICUBIC), "webp_lossy.webp", quality=80)
    save(horse.resize((100, 82), Image.BICUBIC), "webp_lossless_rgba.webp", lossless=True)
    save(src("astronaut_rgba.png").convert("RGBA").resize((128, 128), Image.BICUBIC), "webp_lossy_alpha.webp", quality=70)
    wf = [chelsea.resize((120, 80)), chelsea.resize((120, 80)).rotate(180)]
    wf[0].save(os.path.join(FILES, "webp_animated.webp"), save_all=True, append_images=wf[1:], duration=100, lossless=True)
    save(chelsea.resize((96, 64), Image.BICUBIC), "webp_exif8.webp", quality=90, exif=exif_bytes(8))
    with open(os.path.join(FILES, "webp_lossy.webp"), "rb") as f:
        wb = f.read()
    write("webp_truncated.webp", wb[: len(wb) // 2])

    # --- BMP: what Pillow writes, then hand-made headers and encodings.
    bsrc = chelsea.resize((61, 37), Image.BICUBIC)
    save(bsrc, "bmp_rgb24.bmp")
    save(bsrc.quantize(colors=100), "bmp_pal8.bmp")
    save(camera.resize((45, 33), Image.BICUBIC), "bmp_gray8.bmp")
    save(camera.resize((45, 33), Image.BICUBIC).convert("1"), "bmp_1bit.bmp")
    save(horse.resize((50, 41), Image.BICUBIC), "bmp_rgba32.bmp")
    arr = np.asarray(bsrc).astype(np.uint32)
    w, h = bsrc.size
    rows = lambda fn, flip=True: [fn(arr[y]) for y in (range(h - 1, -1, -1) if flip else range(h))]
    p555 = lambda r: b"".join(struct.pack("<H", ((p[0] >> 3) << 10) | ((p[1] >> 3) << 5) | (p[2] >> 3)) for p in r)
    p565 = lambda r: b"".join(struct.pack("<H", ((p[0] >> 3) << 11) | ((p[1] >> 2) << 5) | (p[2] >> 3)) for p in r)
    write("bmp_rgb555.bmp", bmp_bytes(w, h, 16, rows(p555)))
    write("bmp_rgb565.bmp", bmp_bytes(w, h, 16, rows(p565), compression=3, masks=(0xF800, 0x7E0, 0x1F), masks_after_header=True))
    ha = np.asarray(horse.resize((w, h), Image.BICUBIC)).astype(np.uint32)
    rgba_rows = [b"".join(bytes((p[0], p[1], p[2], p[3])) for p in ha[y]) for y in range(h - 1, -1, -1)]
    write("bmp_bitfields_rgba.bmp", bmp_bytes(w, h, 32, rgba_rows, compression=3, header_size=124,
                                              masks=(0xFF, 0xFF00, 0xFF0000, 0xFF000000)))
    xbgr_rows = [b"".join(bytes((0, p[2], p[1], p[0])) for p in arr[y]) for y in range(h - 1, -1, -1)]
    write("bmp_bitfields_xbgr.bmp", bmp_bytes(w, h, 32, xbgr_rows, compression=3, header_size=108,
                                              masks=(0xFF000000, 0xFF0000, 0xFF00, 0)))
    bgr = lambda r: b"".join(bytes((p[2], p[1], p[0])) for p in r)
    write("bmp_topdown.bmp", bmp_bytes(w, h, 24, rows(bgr, flip=False), top_down=True))
    write("bmp_v5_24.bmp", bmp_bytes(w, h, 24, rows(bgr), header_size=124))
    q = bsrc.quantize(colors=16)
    qi = np.asarray(q)
    qp = q.getpalette()[:48]
    pal4 = b"".join(bytes((qp[3 * i + 2], qp[3 * i + 1], qp[3 * i], 0)) for i in range(16))
    nib = lambda r: bytes(((int(r[i]) << 4) | (int(r[i + 1]) if i + 1 < len(r) else 0)) for i in range(0, len(r), 2))
    write("bmp_pal4.bmp", bmp_bytes(w, h, 4, [nib(qi[y]) for y in range(h - 1, -1, -1)], palette=pal4))
    pal3 = b"".join(bytes((qp[3 * i + 2], qp[3 * i + 1], qp[3 * i])) for i in range(16)) + b"\0" * (3 * 240)
    write("bmp_os2.bmp", bmp_bytes(w, h, 8, [bytes(int(v) for v in qi[y]) for y in range(h - 1, -1, -1)], palette=pal3, header_size=12))
    bits1 = lambda r: bytes(sum(((int(r[i + k]) & 1) << (7 - k)) for k in range(8) if i + k < len(r)) for i in range(0, len(r), 8))
    write("bmp_pal1_colour.bmp", bmp_bytes(w, h, 1, [bits1(qi[y]) for y in range(h - 1, -1, -1)],
                                           palette=bytes((200, 40, 10, 0, 20, 180, 250, 0))))
    # RLE8 / RLE4 (16x8): encoded runs, an absolute run, a delta, end of line, end of bitmap.
    rle8 = bytearray()
    for y in range(8):
        if y == 3:
            rle8 += bytes((0, 2, 3, 1))  # delta: 3 right, 1 up (skips a row)
            rle8 += bytes((5, 9, 0, 0))
            continue
        rle8 += bytes((4, y * 20 + 1, 0, 6)) + bytes((7, 8, 9, 10, 11, 12)) + bytes((6, 250 - y, 0, 0))
    rle8 += bytes((0, 1))
    pal_rle = b"".join(bytes((i * 3 % 256, i * 5 % 256, i * 7 % 256, 0)) for i in range(256))
    write("bmp_rle8.bmp", bmp_bytes(16, 8, 8, None, palette=pal_rle, compression=1, pixel_data=bytes(rle8)))
    rle4 = bytearray()
    for y in range(8):
        rle4 += bytes((5, 0x12 + y, 0, 4, 0x34, 0x56)) + bytes((7, 0xA0 | y, 0, 0))
    rle4 += bytes((0, 1))
    write("bmp_rle4.bmp", bmp_bytes(16, 8, 4, None, palette=pal_rle[:64], compression=2, pixel_data=bytes(rle4)))
    write("bmp_rle8_short.bmp", bmp_bytes(16, 8, 8, None, palette=pal_rle, compression=1, pixel_data=bytes(rle8[:20])))
    with open(os.path.join(FILES, "bmp_rgb24.bmp"), "rb") as f:
        bb = f.read()
    write("bmp_truncated.bmp", bb[: len(bb) * 2 // 3])
    write("bmp_bomb.bmp", bb[:18] + struct.pack("<ii", 100000, 100000) + bb[26:])
    write("bmp_bad_depth.bmp", bb[:28] + struct.pack("<H", 7) + bb[30:])

    # --- Not images, wrong names.
    write("not_an_image.txt", b"this is a text file, not an image\n")
    write("random_bytes.bin", bytes(rng.integers(0, 256, 4096, dtype=np.uint8)))
    shutil.copy(os.path.join(FILES, "pixel_1x1.png"), os.path.join(FILES, "png_named.jpg"))
    shutil.copy(os.path.join(FILES, "jpeg_gray_odd.jpg"), os.path.join(FILES, "jpeg_named.png"))


# ----------------------------------------------------------------------------- expectations
# Files whose expected arrays include the model's real size too (they exercise the JPEG decoder's
# row skipping and column cropping at 224).
BIG_SIZES = {"jpeg_big_portrait.jpg", "jpeg_wide_444.jpg", "jpeg_progressive_portrait.jpg", "jpeg_cmyk_portrait.jpg"}
EXIF_FILES = {"coffee_exif_rot6.jpg", "jpeg_exif2.jpg", "jpeg_exif3.jpg", "jpeg_exif5.jpg", "jpeg_exif8.jpg",
              "png_exif6.png", "webp_exif8.webp"}


def ramp_local_gif(path):
    """gif_ramp_local.gif: a grey-ramp local palette over a colour global one. Pillow 9.4 opens it
    as L but then fails ("image has wrong mode": it attaches the global palette to the L image).
    CLIP++ reads it as GIF says, L with the indices as grey; the expectation is that image (the
    indices come from Pillow's reading of gif_local_palette.gif, the same LZW data)."""
    with Image.open(os.path.join(FILES, "gif_local_palette.gif")) as im:
        idx = np.asarray(im, dtype=np.uint8)
    grey = Image.fromarray(idx, "L")
    tmp = os.path.join(EXPECTED, "_tmp.png")
    grey.save(tmp)
    out = {"mode": "L", "width": grey.width, "height": grey.height, "format": "GIF",
           "decoded_sha256": hashlib.sha256(np.asarray(grey.convert("RGB"), np.uint8).tobytes()).hexdigest(),
           "sizes": [32, 64], "differs_from_pillow": "Pillow 9.4 raises ValueError: image has wrong mode"}
    for n in (32, 64):
        np.save(os.path.join(EXPECTED, f"{os.path.basename(path)}.{n}.rgb8.npy"), ref_rgb8(tmp, n))
    os.remove(tmp)
    return out


OVERRIDES = {"gif_ramp_local.gif": ramp_local_gif}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixtures", default=os.path.join(HERE, "..", "..", "..", "..", "shared", "fixtures"))
    args = ap.parse_args()
    fx = os.path.abspath(args.fixtures)
    shutil.rmtree(FILES, ignore_errors=True)
    shutil.rmtree(EXPECTED, ignore_errors=True)
    os.makedirs(FILES)
    os.makedirs(EXPECTED)
    fx_index = {e["file"]: e for e in json.load(open(os.path.join(fx, "images", "index.json")))["images"]}
    for f in FIXTURE_COPIES:
        shutil.copy(os.path.join(fx, "images", f), os.path.join(FILES, f))
    make_files(fx)

    manifest = {"pillow": Image.__version__, "made_by": "make_images.py", "files": []}
    for name in sorted(os.listdir(FILES)):
        path = os.path.join(FILES, name)
        entry = {"file": name, "bytes": os.path.getsize(path)}
        fixture = fx_index.get(name)
        if fixture is not None:
            entry["fixture"] = True
        try:
            with Image.open(path) as im:
                entry["mode"], (entry["width"], entry["height"]) = im.mode, im.size
                entry["format"] = im.format
                rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
            entry["decoded_sha256"] = hashlib.sha256(rgb.tobytes()).hexdigest()
            sizes = [32, 64] + ([224] if name in BIG_SIZES else [])
            for n in sizes:
                if fixture is not None:  # the fixture's own reference arrays
                    pre = fixture["pre"][str(n)]
                    src = os.path.join(fx, pre["rgb8"] if "rgb8" in pre else f"pre/{n}/{fixture['stem']}.rgb8.npy")
                    arr = np.load(src)
                    assert np.array_equal(arr, ref_rgb8(path, n)), name
                else:
                    arr = ref_rgb8(path, n)
                np.save(os.path.join(EXPECTED, f"{name}.{n}.rgb8.npy"), arr)
                if name in FLOAT_COPIES:
                    fl = np.load(os.path.join(fx, f"pre/{n}/{fixture['stem']}.npy"))
                    assert np.abs(fl - ref_input(arr)).max() <= 1e-6, name
                    np.save(os.path.join(EXPECTED, f"{name}.{n}.f32.npy"), fl)
            entry["sizes"] = sizes
            if name in EXIF_FILES:
                with Image.open(path) as im:
                    t = ImageOps.exif_transpose(im)
                    entry["exif_orientation"] = im.getexif().get(0x0112)
                    entry["exif_sha256"] = hashlib.sha256(np.asarray(t.convert("RGB"), np.uint8).tobytes()).hexdigest()
                for n in (32, 64):
                    np.save(os.path.join(EXPECTED, f"{name}.exif.{n}.rgb8.npy"), ref_rgb8(path, n, exif=True))
        except Exception as e:  # what the reference raises for this file
            if name in OVERRIDES:
                entry.update(OVERRIDES[name](path))
                manifest["files"].append(entry)
                continue
            entry["error"] = f"{type(e).__name__}: {e}"
            for k in ("mode", "width", "height", "format"):
                entry.pop(k, None)
        manifest["files"].append(entry)
    # Image.resize((w, h), BICUBIC) itself, in every mode, for sizes the CLIP geometry never asks
    # for: one axis only, upscaling, extreme downscaling. sha256 of the result in its own mode
    # (mode "1" as 0/255 bytes, I as little-endian int32).
    cases = []
    for name in ("chelsea_120x80.png", "camera_gray.png", "astronaut_rgba.png", "camera_la.png", "camera_16bit.png",
                 "chelsea_palette.png", "bilevel_10x10.png", "chelsea_cmyk.jpg", "png_gray_trns.png"):
        with Image.open(os.path.join(FILES, name)) as im:
            im.load()
            w, h = im.size
            for size in [(max(1, w // 3), h), (w, max(1, h // 3)), (w * 2 + 3, h * 2 + 1), (max(1, w // 40), max(1, h // 30)),
                         (w + 1, h - 1), (1, 1), (w, h)]:
                r = np.asarray(im.resize(size, Image.BICUBIC))
                if im.mode == "1":
                    r = r.astype(np.uint8) * 255
                elif im.mode == "I":
                    r = r.astype("<i4")
                cases.append({"file": name, "mode": im.mode, "width": size[0], "height": size[1],
                              "sha256": hashlib.sha256(np.ascontiguousarray(r).tobytes()).hexdigest()})
    manifest["resize_cases"] = cases
    with open(os.path.join(HERE, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    total = sum(os.path.getsize(os.path.join(d, x)) for d in (FILES, EXPECTED) for x in os.listdir(d))
    print(f"{len(manifest['files'])} files, {sum('error' in e for e in manifest['files'])} rejected by Pillow, "
          f"{total / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
