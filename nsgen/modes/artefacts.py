"""The seed's artefact layout of the paired and patch modes, and their fake stripes.

A stripe-free sinogram (or patch) becomes a fake pair: ``fake_artifacts/clean`` and, with
synthetic stripes, ``fake_artifacts/stripe``; one with real stripes becomes a
real-artefact input ``real_artifacts/stripe`` (no clean target exists, so
``real_artifacts/clean`` stays empty).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nsgen.prep.scaling import Bounds
from nsgen.runner import file_record
from nsgen.sim.stripes import StripeParams, add_stripes

__all__ = ["ARTEFACT_DIRS", "artefact_images", "artefact_records", "make_artefact_dirs",
           "stripe_scale", "synthetic_stripes"]

ARTEFACT_DIRS = ("fake_artifacts/clean", "fake_artifacts/stripe", "real_artifacts/clean",
                 "real_artifacts/stripe")


def make_artefact_dirs(sample_dir: Path) -> None:
    """The paired/patch layout of the seed (``real_artifacts/clean`` stays empty)."""
    for d in ARTEFACT_DIRS:
        (sample_dir / d).mkdir(parents=True, exist_ok=True)


def artefact_images(real: bool, first: np.ndarray, stripe: np.ndarray | None
                    ) -> list[tuple[str, np.ndarray]]:
    """(subdirectory, image) of a real-artefact input, or of a fake pair's clean and stripe.

    Examples
    --------
    >>> [sub for sub, _ in artefact_images(False, np.zeros(1), np.ones(1))]
    ['fake_artifacts/clean', 'fake_artifacts/stripe']
    >>> [sub for sub, _ in artefact_images(True, np.zeros(1), None)]
    ['real_artifacts/stripe']
    """
    if real:
        return [("real_artifacts/stripe", first)]
    assert stripe is not None, "a fake pair needs its stripe image"
    return [("fake_artifacts/clean", first), ("fake_artifacts/stripe", stripe)]


def artefact_records(tag: str, shift: int, index: int, name: str, real: bool,
                     shape: tuple[int, ...], bounds: Bounds, **more: Any) -> list[dict[str, Any]]:
    """Manifest entries of one fake pair (clean + stripe) or one real-artefact input."""
    if real:
        return [file_record(f"{tag}/real_artifacts/stripe/{name}", "stripe", index, shape,
                            bounds, shift=shift, artefact="real", **more)]
    clean = f"{tag}/fake_artifacts/clean/{name}"
    return [file_record(clean, "clean", index, shape, bounds, shift=shift, artefact="fake",
                        **more),
            file_record(f"{tag}/fake_artifacts/stripe/{name}", "stripe", index, shape, bounds,
                        shift=shift, artefact="fake", target=clean, **more)]


def synthetic_stripes(x: np.ndarray, rng: np.random.Generator,
                      params: StripeParams) -> np.ndarray:
    """Stripes on a real (``-log``) sinogram or patch, scaled by its own maximum."""
    return add_stripes(x, rng, params, vmax=stripe_scale(x))


def stripe_scale(x: np.ndarray, maximum: float | None = None) -> float:
    """What :func:`synthetic_stripes` scales the stripes of ``x`` by: its maximum
    (``maximum``, when known already), or, when that is not positive, the maximum of
    ``|x|`` (1 when ``x`` is all zeros).

    Examples
    --------
    >>> stripe_scale(np.array([-3.0, 2.0])), stripe_scale(np.array([-3.0, -1.0]))
    (2.0, 3.0)
    """
    vmax = float(np.max(x)) if maximum is None else maximum
    if not vmax > 0:
        vmax = float(np.max(np.abs(x))) or 1.0
    return vmax
