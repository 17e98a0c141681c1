"""Imports every converter module so each registers itself in `preprocessing.core.CONVERTERS`.

Adding a dataset: one module with an options dataclass, `discover` and `process`, registered with
`CONVERTERS.add(key, Converter(...))`, plus one import line here.
"""

from preprocessing import (  # noqa: F401
    ct_hnscc,
    ct_kidney,
    ct_lidc,
    ct_oropharyngeal,
    mri_breast,
    mri_prostate,
    xray_chest,
)
