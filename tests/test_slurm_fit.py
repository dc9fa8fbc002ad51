"""Default sbatch resources capped to the partition; pending reasons that never clear."""

from __future__ import annotations

from nsgen.slurm_fit import DEFAULT_DIRECTIVES, fitted_directives, hopeless, partition_of


def test_default_resources_fit_the_partition():
    """Capped to the largest node of the partition; no --mem-per-cpu beside --mem."""
    assert "--cpus-per-task=1" in fitted_directives(("p", 1, 900))
    assert "--mem-per-cpu=900M" in fitted_directives(("p", 1, 900))
    assert "--mem-per-cpu=2048M" in fitted_directives(("p", 64, 10**6))
    assert not any(d.startswith("--mem-per-cpu") for d in fitted_directives(("p", 2, 1)))
    assert not any(d.startswith("--mem-per-cpu")
                   for d in fitted_directives(("p", 2, 8000), ["--mem=4G"]))
    assert fitted_directives(None) == DEFAULT_DIRECTIVES
    assert hopeless("PartitionConfig") and not hopeless("Resources") and not hopeless("Priority")



def test_partition_of_the_sbatch_options():
    assert partition_of(["--partition=gpu"]) == "gpu"
    assert partition_of(["-p", "short", "--time=1:00"]) == "short"
    assert partition_of(["-pdebug"]) == "debug" and partition_of(["--time=1:00"]) is None
