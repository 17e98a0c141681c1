"""Physics-based synthetic scanners (CT, MRI, X-ray): the embedded default data of scanshift-ray.

`twins` defines one synthetic twin per paper dataset; `generate` writes them as ordinary shards.
Results computed on them carry data_source = "synthetic".
"""
