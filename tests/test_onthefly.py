"""SyntheticPairs: the pairs PairDataset reads from disk, simulated on the fly; index ->
pair independent of workers and order; DataLoader with 0 and 2 workers."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from helpers import nsgen as run_cli

from nsgen import NsgenError
from nsgen.dataset import PairDataset, SyntheticPairs

OPTIONS = {"size": 16, "objects": 6, "shifts": 2, "flatsnum": 3, "seed": 7, "start": 3,
           "samples": 2}
FLAGS = ["-N", "16", "-o", "6", "-s", "2", "-f", "3", "--seed", "7", "--start", "3", "-S", "2",
         "--no-preview", "--workers", "1"]


@pytest.mark.filterwarnings("ignore:.*got none of the:UserWarning")
@pytest.mark.parametrize("mode", ["simple", "complex"])
def test_pairs_equal_the_written_dataset(tmp_path, mode):
    run_cli("-m", mode, *FLAGS, "-r", str(tmp_path / "d"))
    for units in ("unit", "physical"):
        disk = PairDataset(tmp_path / "d", units=units)
        fly = SyntheticPairs(mode=mode, units=units, **OPTIONS)
        assert len(fly) == len(disk) == 2 * 16 * (1 if mode == "simple" else 2)
        for i in [0, 1, 17, len(fly) - 1, 5, 40 % len(fly)]:
            for a, b in zip(fly[i], disk[i]):
                assert a.dtype == b.dtype == np.float32
                np.testing.assert_array_equal(a, b)


def test_index_to_pair_is_independent_of_order_and_process():
    ds = SyntheticPairs(mode="complex", **OPTIONS)
    forward = [ds[i][0] for i in (0, 9, 63)]
    fresh = SyntheticPairs(mode="complex", **OPTIONS)
    backward = [fresh[i][0] for i in (63, 9, 0)][::-1]
    copied = pickle.loads(pickle.dumps(ds))   # what a worker process receives
    assert copied._scales == {} and copied._row is None
    for a, b, c in zip(forward, backward, [copied[i][0] for i in (0, 9, 63)]):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    assert ds[-1][0].tobytes() == ds[len(ds) - 1][0].tobytes()


def test_bad_index_and_options():
    ds = SyntheticPairs(mode="simple", **OPTIONS)
    with pytest.raises(IndexError, match=r"^pair index 32 is out of range 0\.\.31 \(2 samples "
                                         r"x 16 rows x 1 inputs\)$"):
        ds[32]
    with pytest.raises(IndexError, match="out of range 0..31"):
        ds[-33]
    with pytest.raises(TypeError):
        ds["1"]  # type: ignore[index]
    with pytest.raises(NsgenError, match=r"^--size must be an integer in 8\.\.4096, got 2$"):
        SyntheticPairs(size=2)
    with pytest.raises(NsgenError, match="--I0 must be a positive finite photon count"):
        SyntheticPairs(I0=-1.0)
    with pytest.raises(NsgenError, match="only the synthetic modes"):
        SyntheticPairs(mode="patch", hdf_root=("a.nxs",))
    with pytest.raises(NsgenError, match="units must be one of unit, physical"):
        SyntheticPairs(units="raw")


def test_dataloader_with_two_workers_gives_the_pairs_of_zero_workers():
    torch = pytest.importorskip("torch")
    ds = SyntheticPairs(mode="complex", **OPTIONS)

    def batches(workers: int) -> list[tuple[object, object]]:
        loader = torch.utils.data.DataLoader(ds, batch_size=5, shuffle=False,
                                             num_workers=workers)
        return [(x.numpy(), y.numpy()) for x, y in loader]

    zero, two = batches(0), batches(2)
    assert len(zero) == len(two) == -(-len(ds) // 5)
    for (x0, y0), (x2, y2) in zip(zero, two):
        np.testing.assert_array_equal(x0, x2)
        np.testing.assert_array_equal(y0, y2)
    np.testing.assert_array_equal(zero[1][0][2], ds[7][0])
