"""Two Python threads embedding at once run concurrently: the GIL is released during compute.

Each thread's embedding calls its progress callback (from C++, taking the GIL for the call) after
every batch, so its stamps span the time it spent inside C++. Were the GIL held through the
compute, the second thread could not enter C++ before the first returned and the two spans would
be disjoint; released, they overlap. No speed is asserted, only the overlap of the intervals."""
import threading
import time


def spans_of_two_threads(work):
    barrier = threading.Barrier(2)
    stamps = {0: [], 1: []}
    errors = []

    def run(k):
        try:
            barrier.wait()
            work(lambda done, total: stamps[k].append(time.monotonic()))
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=run, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return [(min(s), max(s)) for s in stamps.values()]


def assert_overlap(spans):
    (a0, a1), (b0, b1) = spans
    assert max(a0, b0) < min(a1, b1), f"the two threads' spans in C++ do not overlap: {spans}"


def test_two_threads_embed_texts_concurrently(tiny_model):
    model = tiny_model[0]
    texts = [f"a photo of thing number {i}" for i in range(3000)]
    spans = spans_of_two_threads(lambda progress: model.embed_texts(texts, batch_size=50, progress=progress))
    assert_overlap(spans)


def test_two_threads_embed_image_files_concurrently(tiny_model):
    from conftest import LOCAL_FIXTURES
    model = tiny_model[0]
    paths = [str(LOCAL_FIXTURES / "images" / "astronaut_224x224.png")] * 200
    spans = spans_of_two_threads(lambda progress: model.embed_image_files(paths, batch_size=8, progress=progress))
    assert_overlap(spans)
