"""Real-data preprocessing: raw datasets on disk -> shards (`<out>/<key>/<domain>.h5` + manifest).

Command (fixed interface): ``python -m preprocessing <key> --raw <raw_dir> --out <shard_root>``.
The converters for the seven paper datasets are not written yet; until they are, the command says
so in one line and exits with status 2. Shards written by any other tool in the format of
`scanshift_ray.shards` work with the sweep engine as they are.
"""
