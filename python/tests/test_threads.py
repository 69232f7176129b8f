"""The GIL is released during compute: another Python thread runs while C++ works.

A second thread spins a pure-Python counter while the main thread is inside one call into C++
(no progress callback, so the call never re-enters Python). Released, the spinner runs through the
whole call; held, it cannot run at all until the call returns (C++ never checks Python's switch
requests), so it advances by at most a switch interval's worth (1 ms here). The counter's advance
during the call is compared with its rate when the main thread merely sleeps: no speed is asserted,
only that the spinner ran for a good part of the call. The work is scaled to take ~0.3 s on the
machine at hand (a fixed amount was too short on a fast CI machine). Seen failing with the release
removed.
"""
import sys
import threading
import time

import numpy as np
import torch


class Spinner:
    """A thread counting as fast as Python allows until stopped."""

    def __init__(self):
        self.count = 0
        self._stop = False
        self._thread = threading.Thread(target=self._run)

    def _run(self):
        while not self._stop:
            self.count += 1

    def __enter__(self):
        self._thread.start()
        time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self._stop = True
        self._thread.join()


def spinner_share_during(call):
    """(fraction of its free-running rate the spinner kept during call(), seconds call() took)."""
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    try:
        with Spinner() as spinner:
            c0, t0 = spinner.count, time.perf_counter()
            time.sleep(0.1)  # releases the GIL: the spinner's free rate
            free_rate = (spinner.count - c0) / (time.perf_counter() - t0)
            c0, t0 = spinner.count, time.perf_counter()
            call()
            elapsed = time.perf_counter() - t0
            advance = spinner.count - c0
    finally:
        sys.setswitchinterval(old_interval)
    return advance / (free_rate * elapsed), elapsed


def sized_call(make_call, seconds=0.3, max_scale=64):
    """make_call(scale) with the work scaled so that one call takes about `seconds` on this machine.

    A fixed amount of work is too short on a fast machine for the share to mean anything (held,
    the spinner still gets ~1 ms), so the work is measured once and scaled up."""
    scale = 1
    while True:
        call = make_call(scale)
        t0 = time.perf_counter()
        call()
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds or scale >= max_scale:
            return call
        scale = min(max_scale, scale * max(2, int(seconds / max(elapsed, 1e-3)) + 1))


def assert_released(make_call, what):
    share, elapsed = spinner_share_during(sized_call(make_call))
    # Held, the share is at most ~1 ms over the call's length; the calls below take far longer.
    assert elapsed > 0.05, f"{what} took {elapsed:.3f} s even at the largest scale: too short for this check"
    assert share > 0.1, f"another Python thread ran only {share:.1%} of the time {what} spent in C++ ({elapsed:.3f} s): is the GIL held?"


def test_embed_texts_releases_the_gil(tiny_model):
    model = tiny_model[0]
    texts = [f"a photo of thing number {i}" for i in range(1000)]
    def make_call(k):
        batch = texts * k
        return lambda: model.embed_texts(batch, batch_size=256)
    assert_released(make_call, "embed_texts")


def test_encode_text_releases_the_gil(tiny_model):
    import clip_cpp
    model = tiny_model[0]
    tokens = clip_cpp.get_tokenizer("ViT-B-32")([f"a photo of thing number {i}" for i in range(1000)])
    def make_call(k):
        batch = tokens.repeat(k, 1)
        return lambda: model.encode_text(batch)
    assert_released(make_call, "encode_text")


def test_encode_image_releases_the_gil(tiny_model):
    model = tiny_model[0]
    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    images = torch.from_numpy(np.random.default_rng(0).standard_normal((100, 3, size, size), dtype=np.float32))
    def make_call(k):
        batch = images.repeat(k, 1, 1, 1)
        return lambda: model.encode_image(batch)
    assert_released(make_call, "encode_image")


def test_embed_image_files_releases_the_gil(tiny_model):
    from conftest import LOCAL_FIXTURES
    model = tiny_model[0]
    paths = [str(LOCAL_FIXTURES / "images" / "astronaut_224x224.png")] * 50
    def make_call(k):
        batch = paths * k
        return lambda: model.embed_image_files(batch, batch_size=32)
    assert_released(make_call, "embed_image_files")
