"""Real-data preprocessing: raw datasets on disk -> shards (`<out>/<key>/<domain>.h5` + manifest).

Command (fixed interface): ``python -m preprocessing <key> --raw <raw_dir> --out <shard_root>``
(also ``scanshift preprocess``). `core` is the engine (pseudonyms, process pool, shard writing),
one module per dataset is a converter (`ct_kidney`, `ct_lidc`, `ct_oropharyngeal`, `ct_hnscc`,
`mri_prostate`, `mri_breast`, `xray_chest`), `dicom` and `contours` read DICOM geometry, RTSTRUCT
and SEG, and `testing` / `fixtures_*` write miniature datasets in the true formats.
"""
