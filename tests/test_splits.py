import numpy as np

from scanshift_ray.splits import split_patients


def test_split_is_by_patient_with_paper_fractions_and_deterministic():
    pids = np.repeat([f"p{i}" for i in range(60)], 3)
    a = split_patients(pids, "ct-kidney", "siemens", 0)
    b = split_patients(pids[::-1].copy(), "ct-kidney", "siemens", 0)
    patients = {k: set(pids[v]) for k, v in a.items()}
    assert [len(patients[k]) for k in ("train", "val", "test")] == [40, 10, 10]
    assert not (patients["train"] & patients["val"]) and not (patients["train"] & patients["test"])
    assert sum(len(v) for v in a.values()) == len(pids)
    assert {k: set(pids[::-1][v]) for k, v in b.items()} == patients  # order of samples is irrelevant


def test_split_depends_on_seed_and_domain():
    pids = np.array([f"p{i}" for i in range(60)])
    base = set(pids[split_patients(pids, "d", "a", 0)["test"]])
    assert set(pids[split_patients(pids, "d", "a", 1)["test"]]) != base
    assert set(pids[split_patients(pids, "d", "b", 0)["test"]]) != base


def test_tiny_domains_still_get_every_split():
    split = split_patients(np.array(["a", "b", "c"]), "d", "x", 0)
    assert all(len(v) == 1 for v in split.values())
