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


def test_shared_patients_error_drop_and_assign():
    import pytest

    from scanshift_ray.errors import ScanshiftError
    from scanshift_ray.splits import keep_masks, shared_patients

    ids = {"a": np.array(["p1", "p1", "p2", "x"]), "b": np.array(["p1", "p2", "p2", "y"])}
    assert shared_patients(ids) == ["p1", "p2"]
    with pytest.raises(ScanshiftError, match="2 pseudonymous patient id\\(s\\) appear in both scanner domains"):
        keep_masks(ids, None, "mri-prostate")
    drop = keep_masks(ids, "drop", "mri-prostate")
    assert drop["a"].tolist() == [False, False, False, True] and drop["b"].tolist() == [False, False, False, True]
    assign = keep_masks(ids, "assign", "mri-prostate")  # p1 has 2 samples in a, p2 has 2 in b
    assert assign["a"].tolist() == [True, True, False, True] and assign["b"].tolist() == [False, True, True, True]
    assert all(m.all() for m in keep_masks({"a": np.array(["u"]), "b": np.array(["v"])}, None, "d").values())


def test_a_tie_goes_to_one_domain_only():
    from scanshift_ray.splits import keep_masks

    ids = {"a": np.array([f"p{i}" for i in range(40)]), "b": np.array([f"p{i}" for i in range(40)])}
    keep = keep_masks(ids, "assign", "ct-kidney")
    assert (keep["a"] ^ keep["b"]).all()  # every patient in exactly one domain
    assert 10 < keep["a"].sum() < 30  # ties are not all given to the first domain
