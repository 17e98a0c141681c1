"""Pixel data that can be trusted: sizes checked from headers before decoding, compressed DICOM decoded.

Decompression bombs: a header may claim any size, and decoding it can exhaust memory before anything
fails. Sizes are read from the header (DICOM Rows x Columns x NumberOfFrames, PNG IHDR, .mha and NIfTI
headers) and an image above `MAX_IMAGE_PIXELS` (or a volume above `MAX_VOLUME_VOXELS`) is refused as a
`Drop` with its reason, never decoded. Real archives store JPEG Lossless, JPEG-LS and JPEG 2000 pixel
data; pydicom decodes them through the pylibjpeg plugins (dependencies of this package). A transfer
syntax nothing can decode drops the case with the syntax's name instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import Dataset

from preprocessing.core import Drop

MAX_IMAGE_PIXELS = 64_000_000  # one 2D image: 8000 x 8000 (the largest radiographs are ~4300 x 3500)
MAX_VOLUME_VOXELS = 1_500_000_000  # one series (float32: 6 GB)


def check_image_size(rows: int, cols: int, frames: int = 1, where: str = "image") -> None:
    """Refuse (Drop) a header-claimed size that is absurd or above the limits."""
    if rows <= 0 or cols <= 0 or frames <= 0:
        raise Drop(f"{where}: header claims an empty or negative size {rows} x {cols} x {frames}")
    if rows * cols > MAX_IMAGE_PIXELS:
        raise Drop(f"{where}: {rows} x {cols} pixels is above the limit of {MAX_IMAGE_PIXELS} per image "
                   "(a damaged header or a decompression bomb), not decoded")
    if rows * cols * frames > MAX_VOLUME_VOXELS:
        raise Drop(f"{where}: {rows} x {cols} x {frames} voxels is above the limit of {MAX_VOLUME_VOXELS}")


def check_dicom_size(ds: Dataset, frames: int = 1) -> None:
    """`check_image_size` from a DICOM header (any number of frames of it)."""
    per = int(ds.get("NumberOfFrames", 1) or 1)
    check_image_size(int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0), per * frames, "DICOM")


def dicom_pixels(ds: Dataset) -> np.ndarray:
    """The decoded pixel array of `ds` (size checked first); undecodable data raises Drop with the syntax."""
    check_dicom_size(ds)
    try:
        return np.asarray(ds.pixel_array)
    except Exception as exc:
        syntax = ds.file_meta.get("TransferSyntaxUID", "unknown") if hasattr(ds, "file_meta") else "unknown"
        name = getattr(syntax, "name", str(syntax))
        raise Drop(f"cannot decode DICOM pixel data ({name}): {type(exc).__name__}: {str(exc)[:150]}") from None


def read_dicom_pixels(path: Path) -> tuple[Dataset, np.ndarray]:
    """Read one DICOM file and decode its pixels (header size checked before decoding)."""
    ds = pydicom.dcmread(path)
    return ds, dicom_pixels(ds)


def png_bits(img: Image.Image) -> int:
    """Bits per sample of a greyscale Pillow image (8 or 16); 0 for colour or other modes."""
    return {"L": 8, "I;16": 16, "I;16B": 16, "I;16L": 16, "I": 16}.get(img.mode, 0)


def read_png(path: Path, bits: int) -> np.ndarray:
    """A greyscale PNG of `bits` bits per sample as float32 (H, W); others raise Drop with why.

    Pillow reads the size from the header without decoding, so a bomb is refused before it costs memory.
    """
    try:
        img = Image.open(path)
    except Image.DecompressionBombError as exc:  # Pillow's own guard fires first for the largest claims
        raise Drop(f"PNG: header size above the limit (a decompression bomb), not decoded: {exc}"[:200]) from None
    with img:
        width, height = img.size
        check_image_size(height, width, 1, "PNG")
        found = png_bits(img)
        if found != bits:
            what = f"{found}-bit greyscale" if found else f"mode {img.mode}"
            raise Drop(f"{what} image among {bits}-bit ones (values would be on another scale)")
        return np.asarray(img, dtype=np.float32)
