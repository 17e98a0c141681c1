"""The dataset registry: one `DatasetSpec` per paper dataset (Table 1 of arXiv 2409.04368).

A spec says what a dataset *is* (modality, task, scanner domains, crop geometry, default model); it
holds no data and no training hyperparameters. Shards for a spec live at `<root>/<key>/<domain>.h5`
whether they came from `preprocessing` (real data) or `scanshift_ray.synthetic` (the built-in twins).
"""

from __future__ import annotations

from dataclasses import dataclass

from scanshift_ray.registry import Registry

MODALITIES = ("CT", "MRI", "X-ray")
TASKS = ("slice2d", "crop3d")


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset is.

    Attributes:
        key: registry name and shard folder, e.g. "ct-kidney".
        title: the paper's abbreviation, e.g. "CT-Kidney".
        modality: one of MODALITIES.
        task: "slice2d" (one 2D image per sample) or "crop3d" (a depth-first crop, (D, H, W)).
        domains: the two shard file stems, domain 1 first, e.g. ("siemens", "other").
        domain_names: how the paper prints them, e.g. ("Siemens", "Other").
        manufacturers: per domain, the case-insensitive substrings of DICOM Manufacturer (0008,0070)
            that select it; an empty tuple means "every manufacturer not claimed by the other domain".
        paper_shape: the model input the paper used, (H, W) or (D, H, W).
        model: default model name in the model registry (the paper's choice).
        label: what label 1 means.
        source: where the real data comes from.
        window: intensity window (native units) applied before z-scoring, or None. CT uses the
            radiological windows (soft tissue -160..240 HU, lung -1000..400 HU): without them bone and
            air dominate an image's variance and a 50 HU lesion contrast all but vanishes after z-scoring.
    """

    key: str
    title: str
    modality: str
    task: str
    domains: tuple[str, str]
    domain_names: tuple[str, str]
    manufacturers: tuple[tuple[str, ...], tuple[str, ...]]
    paper_shape: tuple[int, ...]
    model: str
    label: str
    source: str
    window: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(f"{self.key}: modality {self.modality!r} not in {MODALITIES}")
        if self.task not in TASKS:
            raise ValueError(f"{self.key}: task {self.task!r} not in {TASKS}")
        want_ndim = 2 if self.task == "slice2d" else 3
        if len(self.paper_shape) != want_ndim:
            raise ValueError(f"{self.key}: paper_shape {self.paper_shape} does not fit task {self.task}")

    def other_domain(self, domain: str) -> str:
        """The domain that is not `domain`."""
        first, second = self.domains
        return second if domain == first else first


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def _add(spec: DatasetSpec) -> None:
    DATASETS.add(spec.key, spec)


SOFT_TISSUE, LUNG = (-160.0, 240.0), (-1000.0, 400.0)

# Order follows Table 2 of the paper: CT, MRI, X-ray.
_add(DatasetSpec(
    "ct-kidney", "CT-Kidney", "CT", "slice2d", ("siemens", "other"), ("Siemens", "Other"),
    (("siemens",), ()), (256, 256), "mrnet2d", "kidney tumour on the slice",
    "C4KC-KiTS (TCIA), arterial series", SOFT_TISSUE,
))
_add(DatasetSpec(
    "ct-lidc", "CT-LIDC", "CT", "crop3d", ("ge", "other"), ("GE", "Other"),
    (("ge medical", "ge healthcare", "ge "), ()), (5, 47, 47), "nodulex", "nodule malignancy 5 (vs 1)",
    "LIDC-IDRI (TCIA), reader annotations", LUNG,
))
_add(DatasetSpec(
    "ct-hnscc", "CT-HNSCC", "CT", "slice2d", ("ge", "other"), ("GE", "Other"),
    (("ge medical", "ge healthcare", "ge "), ()), (256, 256), "mrnet2d", "GTV on the slice",
    "HNSCC (TCIA), planning CT", SOFT_TISSUE,
))
_add(DatasetSpec(
    "ct-oropharyngeal", "CT-Oropharyngeal", "CT", "crop3d", ("ge", "toshiba"), ("GE", "Toshiba"),
    (("ge medical", "ge healthcare", "ge "), ("toshiba", "canon")), (72, 72, 72), "nodulex",
    "HPV/P16 positive", "OPC-Radiomics (TCIA), GTV-centred crop", SOFT_TISSUE,
))
_add(DatasetSpec(
    "mri-prostate", "MRI-Prostate", "MRI", "slice2d", ("siemens", "other"), ("Siemens", "Other"),
    (("siemens",), ()), (256, 256), "mrnet2d", "csPCa lesion on the T2W slice",
    "PI-CAI public training set + picai_labels",
))
_add(DatasetSpec(
    "mri-breast", "MRI-Breast", "MRI", "crop3d", ("ge", "siemens"), ("GE", "Siemens"),
    (("ge medical", "ge healthcare", "ge "), ("siemens",)), (5, 47, 47), "nodulex", "tumour stage T > 2",
    "Duke-Breast-Cancer-MRI (TCIA), first post-contrast series",
))
_add(DatasetSpec(
    "xray-chest", "Xray-Chest", "X-ray", "slice2d", ("3", "5"), ("3", "5"),
    (("3",), ("5",)), (224, 224), "densenet121", "cardiomegaly",
    "BRAX (PhysioNet), frontal views",
))
