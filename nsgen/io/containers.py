"""HDF5 and Zarr v3 containers: one per sample, uint16 datasets chunked one image per chunk.

A writer builds the container under a temporary name (:func:`nsgen.io.tiff.temporary_name`)
and :meth:`ContainerWriter.commit` renames it into place once every dataset and the
manifest attributes are written, so a reader (or a rerun) never sees half a container.
HDF5 compression is gzip (level 4, byte shuffle) or Blosc/zstd through ``hdf5plugin``;
Zarr uses the same codecs from the ``zarr`` package (``pip install nsgen[zarr]``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from nsgen.config import COMPRESSIONS
from nsgen.errors import NsgenError
from nsgen.io.tiff import temporary_name

GZIP_LEVEL = 4
BLOSC_LEVEL = 5


def _zarr() -> Any:
    try:
        import zarr
    except ImportError:
        raise NsgenError("--format zarr needs the zarr package; pip install 'nsgen[zarr]' "
                         "or use --format hdf5") from None
    return zarr


class ContainerWriter:
    """Common part: temporary name, rename on commit, removal on abort."""

    def __init__(self, path: Path, compression: str) -> None:
        if compression not in COMPRESSIONS:
            raise NsgenError(f"--compression must be one of {', '.join(COMPRESSIONS)}, got "
                             f"{compression!r}")
        self.path = Path(path)
        self.tmp = temporary_name(self.path)
        self.compression = compression
        remove(self.tmp)

    def create(self, name: str, shape: tuple[int, ...]) -> None:
        """A uint16 dataset of ``shape``, one image (``shape[-2:]``) per chunk."""
        raise NotImplementedError

    def write(self, name: str, start: int, images: np.ndarray) -> None:
        """Images ``start .. start+len(images)-1`` of dataset ``name``."""
        raise NotImplementedError

    def index(self, name: str, keys: np.ndarray) -> None:
        """An int32 dataset of keys (no chunking needed)."""
        raise NotImplementedError

    def close(self, manifest: dict[str, Any]) -> None:
        raise NotImplementedError

    def commit(self, manifest: dict[str, Any]) -> None:
        """Write the manifest attributes, close, rename into place (replacing a stale one)."""
        self.close(manifest)
        remove(self.path)
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        """Drop the temporary container."""
        remove(self.tmp)


def remove(path: Path) -> None:
    """Delete a container file or store directory if present."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _image_chunks(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (1,) * (len(shape) - 2) + tuple(shape[-2:])


class H5Writer(ContainerWriter):
    """``NNNN.h5``: datasets at their series path, manifest in the root attributes."""

    def __init__(self, path: Path, compression: str) -> None:
        import h5py
        super().__init__(path, compression)
        self.file = h5py.File(self.tmp, "w")
        self.filters: dict[str, Any] = {}
        if compression == "gzip":
            self.filters = {"compression": "gzip", "compression_opts": GZIP_LEVEL,
                            "shuffle": True}
        elif compression == "blosc":
            import hdf5plugin
            self.filters = dict(hdf5plugin.Blosc(cname="zstd", clevel=BLOSC_LEVEL,
                                                 shuffle=hdf5plugin.Blosc.SHUFFLE))

    def create(self, name: str, shape: tuple[int, ...]) -> None:
        self.file.create_dataset(name, shape=shape, dtype="uint16",
                                 chunks=_image_chunks(shape), **self.filters)

    def write(self, name: str, start: int, images: np.ndarray) -> None:
        self.file[name][start:start + len(images)] = images

    def index(self, name: str, keys: np.ndarray) -> None:
        self.file.create_dataset(name, data=keys.astype(np.int32))

    def close(self, manifest: dict[str, Any]) -> None:
        for k in ("mode", "sample", "seed", "nsgen_version"):
            self.file.attrs[k] = manifest[k]
        self.file.attrs["manifest.json"] = json.dumps(manifest)
        self.file.close()

    def abort(self) -> None:
        self.file.close()
        super().abort()


class ZarrWriter(ContainerWriter):
    """``NNNN.zarr``: groups and arrays at the series paths, manifest in the root group's
    attributes (``nsgen_manifest``)."""

    def __init__(self, path: Path, compression: str) -> None:
        zarr = _zarr()
        super().__init__(path, compression)
        self.group = zarr.open_group(store=str(self.tmp), mode="w", zarr_format=3)
        self.codecs: list[Any] | None = None
        if compression == "gzip":
            self.codecs = [zarr.codecs.GzipCodec(level=GZIP_LEVEL)]
        elif compression == "blosc":
            self.codecs = [zarr.codecs.BloscCodec(cname="zstd", clevel=BLOSC_LEVEL,
                                                  shuffle="shuffle")]

    def _parent(self, name: str) -> None:
        parent = name.rpartition("/")[0]
        if parent:
            self.group.require_group(parent)

    def create(self, name: str, shape: tuple[int, ...]) -> None:
        self._parent(name)
        self.group.create_array(name, shape=shape, chunks=_image_chunks(shape), dtype="uint16",
                                compressors=self.codecs, fill_value=0)

    def write(self, name: str, start: int, images: np.ndarray) -> None:
        self.group[name][start:start + len(images)] = images

    def index(self, name: str, keys: np.ndarray) -> None:
        self._parent(name)
        self.group.create_array(name, data=keys.astype(np.int32))

    def close(self, manifest: dict[str, Any]) -> None:
        self.group.attrs.update({"nsgen_manifest": manifest})


WRITERS: dict[str, type[ContainerWriter]] = {"hdf5": H5Writer, "zarr": ZarrWriter}


class ContainerReader:
    """Read-only view of a container: dataset shapes and slices."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path = Path(path)
        self.fmt = fmt
        self._datasets: dict[str, tuple[tuple[int, ...], str]] | None = None
        if fmt == "hdf5":
            import h5py
            import hdf5plugin  # noqa: F401 - registers the Blosc filter for reading
            self.handle: Any = h5py.File(self.path, "r")
        else:
            self.handle = _zarr().open_group(store=str(self.path), mode="r")

    def datasets(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """Every dataset: name -> (shape, dtype) (listed once per reader)."""
        if self._datasets is not None:
            return self._datasets
        out: dict[str, tuple[tuple[int, ...], str]] = {}
        if self.fmt == "hdf5":
            import h5py

            def visit(name: str, obj: Any) -> None:
                if isinstance(obj, h5py.Dataset):
                    out[name] = (tuple(obj.shape), str(obj.dtype))
            self.handle.visititems(visit)
        else:
            for name, obj in self.handle.members(max_depth=None):
                if hasattr(obj, "shape"):
                    out[name] = (tuple(obj.shape), str(obj.dtype))
        self._datasets = out
        return out

    def read(self, name: str, index: Any = ()) -> np.ndarray:
        """``dataset[index]`` as a numpy array."""
        return np.asarray(self.handle[name][index])

    def manifest(self) -> dict[str, Any]:
        """The manifest stored with the container."""
        if self.fmt == "hdf5":
            return json.loads(self.handle.attrs["manifest.json"])
        return dict(self.handle.attrs["nsgen_manifest"])

    def close(self) -> None:
        if self.fmt == "hdf5":
            self.handle.close()
