"""Geometry and rasterisation of contours (preprocessing.contours, preprocessing.dicom)."""

from __future__ import annotations

import numpy as np
import pydicom

from preprocessing.contours import fill_polygon, roi_mask, rtstruct_rois
from preprocessing.dicom import group_series, image_series, load_volume, read_headers
from preprocessing.testing import Patient, square, write_ct_series, write_rtstruct


def test_fill_polygon_square_and_triangle():
    mask = fill_polygon(np.array([2.5, 2.5, 7.5, 7.5]), np.array([1.5, 6.5, 6.5, 1.5]), (10, 10))
    assert mask.sum() == 25 and mask[3:8, 2:7].all()
    tri = fill_polygon(np.array([0.0, 8.0, 8.0]), np.array([0.0, 0.0, 8.0]), (10, 10))
    assert tri[7, 1] and not tri[1, 7]  # below the diagonal only
    assert fill_polygon(np.array([4.2]), np.array([3.9]), (10, 10)).sum() == 1  # a point keeps its pixel


def test_rtstruct_lands_on_the_right_pixels_with_offset_origin_and_spacing(tmp_path):
    p = Patient("GEO-1").with_uids()
    cts = write_ct_series(tmp_path / "ct", p, "GE MEDICAL SYSTEMS", np.zeros((4, 40, 40)), z0=12.0, dz=-3.0,
                          spacing=0.5, origin=(-20.0, 30.0))
    # slices are written with z decreasing; the loader sorts them along the normal (z increasing)
    write_rtstruct(tmp_path / "rs" / "1-1.dcm", p, cts, {"GTV": {0: square((10, 5), 1.5)}}, link_sop=False)
    headers, bad = read_headers(sorted(tmp_path.rglob("*.dcm")))
    assert not bad
    vol = load_volume(image_series(group_series(headers))[0])
    assert np.all(np.diff(vol.positions[:, 2]) > 0)
    mask, used = roi_mask(rtstruct_rois(pydicom.dcmread(tmp_path / "rs" / "1-1.dcm")), "^gtv$", vol)
    assert used == ["GTV"]
    k = int(np.argmax(vol.positions[:, 2]))  # written first at z = 12
    assert mask.sum() == 9 and mask[k, 9:12, 4:7].all()
