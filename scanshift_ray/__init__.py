"""scanshift-ray: how much does a diagnostic CNN lose when the scanner changes?

Data flows one way through named artifacts::

    raw data -> preprocessing -> shards (<root>/<key>/<domain>.h5) -> trial -> results/*.parquet -> report

`shards` owns the on-disk format, `trial` is a plain function of (cell, data) -> rows,
`tune_adapter` is the only module that talks to Ray Tune, `local_ray` how a sweep starts or joins Ray.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("scanshift-ray")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
