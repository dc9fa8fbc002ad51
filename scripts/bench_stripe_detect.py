"""Benchmark the Larix-2 stripe detection kernels (nsgen.prep.stripe_detect).

1. ``stripe_weights`` + ``merge_stripes`` (exact weights, then the mask) and the mask-only
   path ``detect_stripe_mask`` on a (1801, 32, 2560) float32 volume with the NoStripesNet
   defaults (size 250, radius 3, threshold 0.63, length 600, depth 30, width 22, sens 85):
   seconds per detector row and the extrapolation to 256 rows (single process).
2. The vertical order statistic alone (exact, mirrored) against a naive per-window
   ``np.partition`` and against ``scipy.ndimage.rank_filter`` on a 3D array (whose cost grows
   with the window; its 'mirror' mode is also a different boundary rule), on a small case,
   for several window sizes.

No assertions on timings. Usage::

    python scripts/bench_stripe_detect.py [--angles 1801 --rows 32 --cols 2560] [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import ndimage

from nsgen.prep import stripe_detect as sd

DEFAULTS = dict(size=250, radius=3, threshold=0.63, min_stripe_length=600,
                min_stripe_depth=30, min_stripe_width=22, sensitivity_perc=85.0)


def make_volume(n_k: int, n_j: int, n_i: int, seed: int = 0) -> np.ndarray:
    """Smooth drifting sinograms + 0.1 % noise + a few short-in-depth stripes."""
    rng = np.random.default_rng(seed)
    x = np.empty((n_k, n_j, n_i), dtype=np.float32)
    th = np.linspace(0, np.pi, n_k, endpoint=False, dtype=np.float32)[:, None]
    i = np.arange(n_i, dtype=np.float32)[None, :]
    for j in range(n_j):
        x[:, j] = 1 + 0.3 * np.sin(np.pi * i / n_i + 0.3 * np.cos(th)) + 0.002 * j
        x[:, j] += rng.standard_normal((n_k, n_i), dtype=np.float32) * np.float32(1e-3)
    for _ in range(max(1, n_i // 128)):
        c0 = int(rng.integers(0, n_i - 4))
        j0 = int(rng.integers(0, max(1, n_j - 6)))
        k0 = int(rng.integers(0, n_k // 3))
        x[k0:, j0 : j0 + 6, c0 : c0 + 3] += np.float32(0.05 * 1.3)
    return x


def naive_order_statistic(r3: np.ndarray, size: int) -> np.ndarray:
    """Element size-1 of every mirrored window by np.partition: O(n * w) per column."""
    n = r3.shape[0]
    table = np.stack([sd._mirror_index(n, m) for m in range(-size, size + 1)], axis=1)
    out = np.empty_like(r3)
    for k in range(n):
        out[k] = np.partition(r3[table[k]], size - 1, axis=0)[size - 1]
    return out


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--angles", type=int, default=1801)
    ap.add_argument("--rows", type=int, default=32)
    ap.add_argument("--cols", type=int, default=2560)
    ap.add_argument("--quick", action="store_true", help="small volume (smoke run)")
    args = ap.parse_args()
    n_k, n_j, n_i = (601, 32, 512) if args.quick else (args.angles, args.rows, args.cols)
    params = dict(DEFAULTS)
    if args.quick:
        params.update(size=80, min_stripe_length=200)

    print(f"volume (angles, rows, cols) = ({n_k}, {n_j}, {n_i}) float32, params {params}")
    x, dt = timed(make_volume, n_k, n_j, n_i)
    print(f"  generated in {dt:.1f} s")

    w, t_w = timed(sd.stripe_weights, x, params["size"], params["radius"])
    merge_kw = {k: v for k, v in params.items() if k not in ("size", "radius")}
    m, t_m = timed(sd.merge_stripes, w, **merge_kw)
    m2, t_d = timed(sd.detect_stripe_mask, x, **params)
    assert np.array_equal(m, m2)
    print(f"  mask: {m.mean() * 100:.3f} % of voxels set")
    print(f"{'stage':36s} {'total s':>9s} {'s / row':>9s} {'256 rows':>10s}")
    for name, t in [
        ("stripe_weights (exact W)", t_w),
        ("merge_stripes", t_m),
        ("stripe_weights + merge_stripes", t_w + t_m),
        ("detect_stripe_mask (mask only)", t_d),
    ]:
        print(f"{name:36s} {t:9.2f} {t / n_j:9.3f} {t / n_j * 256:9.1f}s")
    del x, w, m, m2

    print("\nvertical order statistic alone, (1801 angles, 1 row, 256 columns) of ratios")
    rng = np.random.default_rng(1)
    r3 = rng.random((1801, 1, 256), dtype=np.float32)
    print(f"{'size':>5s} {'window':>6s} {'fast s':>8s} {'ns/elem':>8s} {'naive s':>8s} "
          f"{'ndimage 3D s':>13s} {'same':>5s}")
    for size in (25, 100, 250, 500):
        fast, t_f = timed(sd._vertical_order_statistic, r3, size)
        naive, t_n = timed(naive_order_statistic, r3, size)
        _, t_nd = timed(ndimage.rank_filter, r3, size - 1, size=(2 * size + 1, 1, 1),
                        mode="mirror")
        print(f"{size:5d} {2 * size + 1:6d} {t_f:8.3f} {t_f / r3.size * 1e9:8.0f} {t_n:8.3f} "
              f"{t_nd:13.3f} {str(np.array_equal(fast, naive)):>5s}")


if __name__ == "__main__":
    main()
