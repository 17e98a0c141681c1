"""The shift atlas: what changes between the two scanner domains of a dataset, from the shards alone.

No model is trained. Every image is shown and measured exactly as a trial feeds it to the model
(`trial._load`: CT window, then resizing to the profile's input shape; `trial.zscore`: per-image
z-score, the default normalisation), so the atlas shows the shift the classifier has to cope with.

Per dataset it writes `atlas_<key>_examples.png` (example images per domain and label),
`atlas_<key>_histograms.png` (intensity densities before and after normalisation) and one row of
`atlas_distances.csv` (cheap distribution distances), and `atlas.md` ties them together.

Shards may be large and are memory-mapped: only a deterministic subsample of at most `MAX_IMAGES`
images per domain is read, in chunks of `CHUNK` images, so memory stays bounded at any input size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import wasserstein_distance  # noqa: E402

from scanshift_ray.datasets import DATASETS, DatasetSpec  # noqa: E402
from scanshift_ray.errors import ScanshiftError  # noqa: E402
from scanshift_ray.profiles import PROFILES, Profile  # noqa: E402
from scanshift_ray.shards import Shard, has_any_shard, load_domains  # noqa: E402
from scanshift_ray.trial import _load, zscore  # noqa: E402

MAX_IMAGES = 256  # images per domain read for the statistics
N_PIXELS = 65_536  # pixels per domain fed to the Wasserstein distances: bounded, deterministic cost
CHUNK = 32  # images resized at a time (a 72^3 crop at paper size is 1.5 MB; 256 at once would be 380 MB)
NORMALIZATION = "image"  # the trial's default; "train" statistics need a split, which the atlas has none of
STATS = ("image_mean", "image_std", "laplacian")
Z_RANGE = (-3.0, 3.0)  # one grey scale for every example panel, so domains are compared by eye


@dataclass(frozen=True)
class DomainSample:
    """The measured subsample of one domain.

    native: pixel subsample in native units, after the CT window and resizing (before z-scoring).
    normalized: the same pixels after per-image z-scoring (what the model sees).
    image_stats: per image, "image_mean" and "image_std" (native) and "laplacian" (normalised).
    """

    native: np.ndarray
    normalized: np.ndarray
    image_stats: dict[str, np.ndarray]

    @property
    def n_images(self) -> int:
        return int(self.image_stats["image_mean"].size)


def _profile(profile: Profile | str) -> Profile:
    return PROFILES.get(profile) if isinstance(profile, str) else profile


def model_view(shard: Shard, idx: np.ndarray, spec: DatasetSpec, profile: Profile | str) -> tuple[np.ndarray, ...]:
    """Samples `idx` as the trial prepares them: (native, normalised), each (n, *input_shape) float32.

    Native is windowed and resized (the trial's `_load`), normalised is that after `zscore`. Pass `idx`
    sorted: a memory-mapped shard then reads only those images, in file order.
    """
    x = _load(shard, np.asarray(idx, dtype=np.int64), _profile(profile).input_shape(spec), spec.window)
    return x.numpy(), zscore(x, NORMALIZATION).numpy()


def mean_abs_laplacian(images: np.ndarray) -> np.ndarray:
    """Per image, the mean absolute in-plane 5-point Laplacian (interior pixels), shape (n,).

    A high-frequency energy measure: scanners differ in sharpness (reconstruction kernel, detector
    resolution) and noise level, and both show up here while the image mean and std may agree. In-plane
    only (last two axes), because slice spacing differs from pixel spacing in volumes.
    """
    x = np.asarray(images, dtype=np.float32)
    c = x[..., 1:-1, 1:-1]
    lap = x[..., :-2, 1:-1] + x[..., 2:, 1:-1] + x[..., 1:-1, :-2] + x[..., 1:-1, 2:] - 4.0 * c
    return np.abs(lap).reshape(len(x), -1).mean(axis=1)


def image_stats(native: np.ndarray, normalized: np.ndarray) -> dict[str, np.ndarray]:
    """Image-level statistics of a batch: mean and std in native units, Laplacian energy after z-scoring
    (so it measures sharpness/noise relative to the image's contrast, independent of gain)."""
    flat = native.reshape(len(native), -1).astype(np.float64)
    return {"image_mean": flat.mean(axis=1), "image_std": flat.std(axis=1),
            "laplacian": mean_abs_laplacian(normalized).astype(np.float64)}


def subsample(n: int, k: int, seed: int) -> np.ndarray:
    """`min(n, k)` sorted distinct indices of range(n), fixed by `seed` (sorted: a memory map reads in order).

    The same (n, k, seed) gives the same indices in both domains: common random numbers, so a domain
    that is a pure transform of the other is compared image for image.
    """
    return np.sort(np.random.default_rng(seed).choice(n, size=min(n, k), replace=False))


def sample_domain(shard: Shard, spec: DatasetSpec, profile: Profile | str, seed: int = 0,
                  max_images: int = MAX_IMAGES, n_pixels: int = N_PIXELS) -> DomainSample:
    """Read a deterministic subsample of `shard` chunk by chunk and measure it (see `DomainSample`)."""
    idx = subsample(len(shard), max_images, seed)
    size = int(np.prod(_profile(profile).input_shape(spec)))
    per = max(1, min(size, n_pixels // len(idx)))  # pixels kept per image
    rng = np.random.default_rng([seed, 1])
    where = np.stack([rng.choice(size, per, replace=False) for _ in idx])
    native, normed, stats = [], [], []
    for lo in range(0, len(idx), CHUNK):
        x, z = model_view(shard, idx[lo:lo + CHUNK], spec, profile)
        pick = where[lo:lo + CHUNK]
        native.append(np.take_along_axis(x.reshape(len(x), -1), pick, axis=1).ravel())
        normed.append(np.take_along_axis(z.reshape(len(z), -1), pick, axis=1).ravel())
        stats.append(image_stats(x, z))
    joined = {k: np.concatenate([s[k] for s in stats]) for k in STATS}
    return DomainSample(np.concatenate(native), np.concatenate(normed), joined)


def compare(samples: Mapping[str, DomainSample], spec: DatasetSpec) -> dict:
    """One table row from the two domains' samples (pure): Wasserstein-1 distances and image statistics.

    Columns: dataset, domain_1, domain_2, n_images_1/2, w1_normalized, w1_native (in native units), and
    `<stat>_<i>_mean` / `<stat>_<i>_std` over images for stat in STATS and domain i in 1, 2.
    """
    a, b = (samples[d] for d in spec.domains)
    row: dict = {"dataset": spec.key, "domain_1": spec.domains[0], "domain_2": spec.domains[1],
                 "n_images_1": a.n_images, "n_images_2": b.n_images,
                 "w1_normalized": float(wasserstein_distance(a.normalized, b.normalized)),
                 "w1_native": float(wasserstein_distance(a.native, b.native))}
    for stat in STATS:
        for i, s in ((1, a), (2, b)):
            row[f"{stat}_{i}_mean"] = float(s.image_stats[stat].mean())
            row[f"{stat}_{i}_std"] = float(s.image_stats[stat].std())
    return row


def distances(shards: Mapping[str, Shard], spec: DatasetSpec, profile: Profile | str = "fast",
              seed: int = 0) -> dict:
    """The distance row of one dataset (`compare` on `sample_domain` of each domain), plus its data source."""
    return _row({d: sample_domain(shards[d], spec, profile, seed) for d in spec.domains}, shards, spec)


def _row(samples: Mapping[str, DomainSample], shards: Mapping[str, Shard], spec: DatasetSpec) -> dict:
    return {**compare(samples, spec), "data_source": str(shards[spec.domains[0]].attrs["data_source"])}


def distance_table(shard_root: str | Path, profile: Profile | str = "fast", datasets: Sequence[str] | None = None,
                   seed: int = 0) -> pd.DataFrame:
    """`distances` of every dataset with shards under `shard_root` (or of `datasets`), one row each
    (the content of `atlas_distances.csv`)."""
    specs = [DATASETS.get(k) for k in _found(shard_root, datasets)]
    return pd.DataFrame([distances(load_domains(shard_root, s), s, profile, seed) for s in specs])


def pick_examples(labels: np.ndarray, patient_ids: np.ndarray, label: int, n: int, seed: int) -> np.ndarray:
    """Up to `n` indices with `label`, at most one per patient, fixed by `seed` (in drawing order)."""
    rng = np.random.default_rng([seed, label])
    order = rng.permutation(np.flatnonzero(np.asarray(labels) == label))
    _, first = np.unique(np.asarray(patient_ids, dtype=str)[order], return_index=True)
    return order[np.sort(first)][:n]


def example_images(shard: Shard, idx: np.ndarray, spec: DatasetSpec, profile: Profile | str) -> np.ndarray:
    """The normalised model input of samples `idx` in their given order, (n, H, W); the centre slice
    [D // 2] of each (D, H, W) volume (z-scored over the whole volume first, as in the trial)."""
    idx = np.asarray(idx, dtype=np.int64)
    if idx.size == 0:
        return np.zeros((0, *_profile(profile).input_shape(spec)[-2:]), dtype=np.float32)
    order = np.argsort(idx)  # read in file order, hand back in the caller's order
    _, z = model_view(shard, idx[order], spec, profile)
    z = z[np.argsort(order)]
    return z[:, z.shape[1] // 2] if z.ndim == 4 else z


# ---- I/O layer: figures and files -------------------------------------------------------------------


def _examples_figure(shards: Mapping[str, Shard], spec: DatasetSpec, profile: Profile, n: int, seed: int,
                     path: Path) -> Path:
    """Rows: label 1, label 0. Column pairs: example k of domain 1 beside example k of domain 2."""
    d1, d2 = spec.domains
    fig, axes = plt.subplots(2, 2 * n, figsize=(1.3 * 2 * n + 0.6, 3.4), squeeze=False)
    for r, label in enumerate((1, 0)):
        for j, domain in enumerate(spec.domains):
            s = shards[domain]
            imgs = example_images(s, pick_examples(s.labels, s.patient_ids, label, n, seed), spec, profile)
            for k in range(n):
                ax = axes[r, 2 * k + j]
                ax.set_xticks([])
                ax.set_yticks([])
                if k < len(imgs):
                    ax.imshow(imgs[k], cmap="gray", vmin=Z_RANGE[0], vmax=Z_RANGE[1])
                if r == 0:
                    ax.set_title(f"{domain} #{k + 1}", fontsize=8)
                if 2 * k + j == 0:
                    ax.set_ylabel(f"label {label}", fontsize=8)
    where = ", centre slice" if spec.task == "crop3d" else ""
    shape = "x".join(map(str, profile.input_shape(spec)))
    fig.suptitle(f"{spec.title}: rows label 1 (top) / label 0 (bottom); column pairs {d1} | {d2}, one patient "
                 f"each\nmodel input {shape}{where}, per-image z-score, grey {Z_RANGE[0]:g}..{Z_RANGE[1]:g}",
                 fontsize=8)
    return _save(fig, path)


def _histogram_figure(samples: Mapping[str, DomainSample], spec: DatasetSpec, units: str, path: Path) -> Path:
    """Left: native densities (after the CT window); right: after z-scoring. Common bins per panel."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    native = "" if spec.window is None else f", window {spec.window[0]:g}..{spec.window[1]:g}"
    for ax, field, xlabel in ((axes[0], "native", f"native intensity ({units}{native})"),
                              (axes[1], "normalized", "per-image z-scored intensity")):
        pooled = np.concatenate([getattr(samples[d], field) for d in spec.domains])
        bins = np.linspace(float(pooled.min()), float(pooled.max()) + 1e-6, 81)  # one binning for both domains
        for d in spec.domains:
            ax.hist(getattr(samples[d], field), bins=bins, density=True, histtype="step", lw=1.2, label=d)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel("density", fontsize=8)
        ax.legend(fontsize=7)
    counts = " / ".join(f"{samples[d].n_images} images, {samples[d].native.size} pixels" for d in spec.domains)
    fig.suptitle(f"{spec.title}: intensity densities of the model input, common bins ({counts})", fontsize=9)
    return _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120, metadata={"Software": None})  # no version stamp: same inputs, same bytes
    plt.close(fig)
    return path


def _found(shard_root: str | Path, datasets: Sequence[str] | None) -> list[str]:
    """The datasets to draw; a one-line error when the root holds none."""
    root = str(shard_root)
    if "://" not in root and not Path(root).is_dir():
        raise ScanshiftError(f"shard root not found: {root}")
    keys = list(datasets) if datasets is not None else DATASETS.names()
    found = [k for k in keys if has_any_shard(root, DATASETS.get(k))]
    if not found:
        raise ScanshiftError(f"no shards under {root} (looked for <root>/<dataset>/<domain>.h5 of "
                             f"{', '.join(keys)})")
    return found


def _num(x: float) -> str:
    """Short, never in exponent form: 1234, 12.3, 0.123."""
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.1f}" if abs(x) >= 10 else f"{x:.3g}"


def _fmt(mean: float, std: float) -> str:
    return f"{_num(mean)} ± {_num(std)}"


def markdown_table(table: pd.DataFrame) -> str:
    """The distance table as markdown: one row per dataset, image statistics as mean ± std per domain."""
    head = ["dataset", "domains", "W1 z-scored", "W1 native"] + [f"{s} (1 / 2)" for s in STATS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table.to_dict("records"):
        cells = [r["dataset"], f"{r['domain_1']} / {r['domain_2']}", f"{r['w1_normalized']:.4f}",
                 _num(r["w1_native"])]
        cells += [f"{_fmt(r[f'{s}_1_mean'], r[f'{s}_1_std'])} / {_fmt(r[f'{s}_2_mean'], r[f'{s}_2_std'])}"
                  for s in STATS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _source_sentence(table: pd.DataFrame) -> str:
    """Whether the shards are synthetic or real, from each shard's `data_source` attribute."""
    by = table.groupby("data_source")["dataset"].apply(list).to_dict()
    if set(by) == {"synthetic"}:
        return ("These shards are **synthetic** (the built-in twins, `data_source` = synthetic): the differences "
                "below are the simulator's designed scanner effects, not measurements of real scanners.")
    if set(by) == {"real"}:
        return "These shards hold **real** data (`data_source` = real)."
    return "The shards mix sources: " + "; ".join(f"**{s}**: {', '.join(k)}" for s, k in sorted(by.items())) + "."


def _markdown(table: pd.DataFrame, figures: Mapping[str, list[Path]], profile: str, seed: int) -> str:
    parts = [f"# Shift atlas ({profile} profile, seed {seed})", "", _source_sentence(table), "",
             "Images are shown and measured as the model sees them: CT window, resized to the profile's input "
             "shape, per-image z-score. W1 is the Wasserstein-1 distance between the two domains' pixel "
             f"intensities (a fixed subsample of {N_PIXELS} pixels from at most {MAX_IMAGES} images per "
             "domain); native W1 is in the shard's units. Image statistics are mean ± std over images: "
             "image mean and std in native units, and the mean absolute Laplacian of the z-scored image "
             "(high-frequency energy: sharpness and noise differ between scanners).", "",
             markdown_table(table), "", "Columns in full: `atlas_distances.csv`.", ""]
    for key, paths in figures.items():
        parts += [f"## {DATASETS.get(key).title}", ""] + [f"![{p.stem}]({p.name})" for p in paths] + [""]
    return "\n".join(parts)


def write_atlas(shard_root: str | Path, out: str | Path, profile: str = "fast",
                datasets: Sequence[str] | None = None, n_examples: int = 4, seed: int = 0) -> list[Path]:
    """Write the shift atlas of every dataset found under `shard_root` (or of `datasets`) into `out`.

    Returns the paths written: per dataset `atlas_<key>_examples.png` and `atlas_<key>_histograms.png`,
    then `atlas_distances.csv` and `atlas.md`.

    Raises:
        ScanshiftError: the root is missing or holds no shards, or a shard is invalid (one line).
    """
    prof = _profile(profile)
    keys = _found(shard_root, datasets)  # before creating `out`: a bad root leaves nothing behind
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows, figures = [], {}
    for key in keys:
        spec = DATASETS.get(key)
        shards = load_domains(shard_root, spec)
        samples = {d: sample_domain(shards[d], spec, prof, seed) for d in spec.domains}
        rows.append(_row(samples, shards, spec))
        units = str(shards[spec.domains[0]].attrs.get("units", "native units"))
        figures[key] = [
            _examples_figure(shards, spec, prof, n_examples, seed, out / f"atlas_{key}_examples.png"),
            _histogram_figure(samples, spec, units,
                              out / f"atlas_{key}_histograms.png")]
    table = pd.DataFrame(rows)
    csv = out / "atlas_distances.csv"
    table.to_csv(csv, index=False)
    md = out / "atlas.md"
    md.write_text(_markdown(table, figures, prof.name, seed))
    return [p for paths in figures.values() for p in paths] + [csv, md]
