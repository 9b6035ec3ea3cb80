"""S1's Python baselines: the same random windows read with numpy.memmap and h5py.

    python3 py-windows.py build-h5 <npy> <h5>
        writes the .npy's array to <h5> as dataset "m" (contiguous, uncompressed).
    python3 py-windows.py windows <npy> <h5> <startsFile (u32le)> <windowRows>
        in this (fresh) process: numpy.memmap of the .npy, one pass copying every window
        into a preallocated output (first touch: the process maps the file's pages), then a
        second pass (loaded); h5py: one warm pass of Dataset.read_direct per window, then a
        measured one. Prints one JSON line of seconds per pass.

If numpy or h5py cannot be imported, prints {"skipped": "<reason>"} (what is missing) and
exits 0: the bench notes it and goes on.
"""
import json
import sys
import time

try:
    import numpy as np
except ImportError as e:
    print(json.dumps({"skipped": f"numpy: {e}"}))
    sys.exit(0)
try:
    import h5py
except ImportError as e:
    h5py = None
    h5py_missing = f"h5py: {e}"


def build_h5(npy, h5):
    if h5py is None:
        print(json.dumps({"skipped": h5py_missing}))
        return
    src = np.load(npy, mmap_mode="r")
    with h5py.File(h5, "w") as f:
        d = f.create_dataset("m", shape=src.shape, dtype=src.dtype)
        step = max(1, (64 << 20) // (src.shape[1] * src.itemsize))
        for r in range(0, src.shape[0], step):
            d[r:r + step] = src[r:r + step]
    print(json.dumps({"built": h5}))


def windows(npy, h5, starts_file, window_rows):
    starts = np.fromfile(starts_file, dtype="<u4").astype(np.int64)
    mm = np.load(npy, mmap_mode="r")
    out = np.ones((len(starts) * window_rows, mm.shape[1]), dtype=mm.dtype)  # faulted in

    def memmap_pass():
        t0 = time.perf_counter()
        for i, s in enumerate(starts):
            out[i * window_rows:(i + 1) * window_rows] = mm[s:s + window_rows]
        return time.perf_counter() - t0

    res = {"numpy": np.__version__, "memmapFirst": memmap_pass(), "memmapLoaded": memmap_pass()}
    first_ok = bool(np.array_equal(out[:window_rows], mm[starts[0]:starts[0] + window_rows]))
    if h5py is None:
        res["h5pySkipped"] = h5py_missing
    else:
        with h5py.File(h5, "r") as f:
            d = f["m"]

            def h5_pass():
                t0 = time.perf_counter()
                for i, s in enumerate(starts):
                    d.read_direct(out, np.s_[s:s + window_rows], np.s_[i * window_rows:(i + 1) * window_rows])
                return time.perf_counter() - t0

            h5_pass()
            res["h5py"] = h5py.__version__
            res["h5pyHot"] = h5_pass()
            first_ok = first_ok and bool(np.array_equal(out[:window_rows], mm[starts[0]:starts[0] + window_rows]))
    res["checked"] = first_ok
    print(json.dumps(res))


if __name__ == "__main__":
    if sys.argv[1] == "build-h5":
        build_h5(sys.argv[2], sys.argv[3])
    else:
        windows(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
