"""The published numbers of arXiv 2409.04368, Table 2, for side-by-side comparison with real-data runs."""

from __future__ import annotations

# (dataset, train_domain) -> (same-scanner AUC, other-scanner AUC, delta), means over 10 seeds.
TABLE2: dict[tuple[str, str], tuple[float, float, float]] = {
    ("ct-kidney", "other"): (0.819, 0.763, -0.056),
    ("ct-lidc", "ge"): (0.932, 0.900, -0.032),
    ("ct-lidc", "other"): (0.943, 0.895, -0.048),
    ("ct-hnscc", "ge"): (0.942, 0.924, -0.018),
    ("ct-hnscc", "other"): (0.943, 0.928, -0.015),
    ("ct-oropharyngeal", "ge"): (0.749, 0.751, 0.002),
    ("ct-oropharyngeal", "toshiba"): (0.725, 0.738, 0.013),
    ("mri-prostate", "siemens"): (0.791, 0.505, -0.286),
    ("mri-prostate", "other"): (0.692, 0.657, -0.035),
    ("mri-breast", "ge"): (0.836, 0.764, -0.072),
    ("mri-breast", "siemens"): (0.791, 0.796, 0.005),
    ("xray-chest", "3"): (0.898, 0.880, -0.018),
    ("xray-chest", "5"): (0.917, 0.801, -0.116),
}
# The paper's text: mean delta per modality.
MODALITY_DELTA = {"CT": -0.02, "MRI": -0.097, "X-ray": -0.067}
