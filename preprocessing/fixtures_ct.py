"""Miniature raw trees of the four TCIA CT datasets with known answers (see `preprocessing.testing`).

Each `make_*` writes a tree under `root` in the dataset's real layout and returns what a correct
converter must produce: per domain, the labels in order, and the identifying strings that must not leak.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from preprocessing.testing import Patient, Polygon, square, write_ct_series, write_rtstruct, write_seg, write_xlsx

STUDY = "06-29-2003-NA-threephaseabdomen-41748"


def _junk(folder: Path) -> None:
    """A text file and a truncated DICOM: both must be skipped and reported, not crash the run."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_text("not an image")
    (folder / "1-999.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00")


def make_kits(root: Path, side: int = 32, n_slices: int = 4) -> dict[str, Any]:
    """C4KC-KiTS: SIEMENS and GE patients with a SEG on the arterial series, a TOSHIBA one without SEG."""
    base = root / "manifest-1600000000" / "C4KC-KiTS"
    answers: dict[str, list[int]] = {"siemens": [], "other": []}
    cases = [("KiTS-00000", "SIEMENS", "siemens", 2), ("KiTS-00001", "GE MEDICAL SYSTEMS", "other", 1),
             ("KiTS-00002", "TOSHIBA", None, None)]
    for i, (pid, maker, domain, tumour_slice) in enumerate(cases):
        p = Patient(pid, name=f"Patient^{pid}").with_uids()
        study = base / pid / STUDY
        write_ct_series(study / "3.000000-noncontrast-11111", p, maker, np.zeros((n_slices, side, side)),
                        "noncontrast", 3)
        cts = write_ct_series(study / "5.000000-arterial-22222", p, maker,
                              np.full((n_slices, side, side), 40 + i), "arterial", 5)
        if tumour_slice is None:
            continue
        labelmap = np.zeros((n_slices, side, side), dtype=np.uint8)
        labelmap[1:3, 8:20, 8:20] = 1  # kidney
        labelmap[tumour_slice, 10:14, 10:14] = 2  # tumour
        write_seg(study / "300.000000-Segmentation-33333" / "1-1.dcm", cts, labelmap, ["Kidney", "Tumor"])
        answers[str(domain)] = [int(k == tumour_slice) for k in range(n_slices)]
    _junk(base / "KiTS-00000" / STUDY / "5.000000-arterial-22222")
    return {"labels": answers, "secrets": [c[0] for c in cases] + ["Patient^KiTS", "19450704"], "dropped": 1}


def make_hnscc(root: Path, side: int = 32, n_slices: int = 6) -> dict[str, Any]:
    """HNSCC: a Philips planning CT with a GTVp (ADAC RTSTRUCT) plus a GE PET/CT; a GE planning CT."""
    base = root / "HNSCC"
    answers: dict[str, list[int]] = {"ge": [], "other": []}
    for pid, maker, domain, gtv in [("HNSCC-01-0001", "Philips Medical Systems", "other", (2, 3)),
                                    ("HNSCC-01-0002", "GE MEDICAL SYSTEMS", "ge", (1,))]:
        p = Patient(pid, name=f"Patient^{pid}").with_uids()
        sim = base / pid / "12-05-1998-NA-RT SIMULATION-43582"
        cts = write_ct_series(sim / "NA-28768", p, maker, np.full((n_slices, side, side), 30), "", 2)
        rois: dict[str, dict[int, Polygon]] = {
            "GTVp": {k: square((16, 16), 4) for k in gtv}, "Brainstem": {0: square((8, 8), 3)},
            "PTV70": {k: square((16, 16), 8) for k in range(n_slices)}}
        write_rtstruct(sim / "1.000000-NA-78710" / "1-1.dcm", p, cts, rois)
        if domain == "other":  # a diagnostic PET/CT on a GE scanner: must be ignored
            pet = base / pid / "12-01-1998-NA-PETCT HEAD  NECK CA-59359"
            write_ct_series(pet / "2.000000-CT Atten Cor Head IN-25068", p.with_uids(), "GE MEDICAL SYSTEMS",
                            np.zeros((3, side, side)), "CT Atten Cor", 2)
        answers[domain] = [int(k in gtv) for k in range(n_slices)]
    return {"labels": answers, "secrets": ["HNSCC-01-0001", "HNSCC-01-0002", "Patient^HNSCC"], "dropped": 0}


def make_opc(root: Path, side: int = 40, n_slices: int = 20) -> dict[str, Any]:
    """OPC-Radiomics: GE (HPV positive), TOSHIBA (negative), GE (unknown: dropped); GTV off-centre."""
    base = root / "OPC-Radiomics"
    rows = [["Trial PatientID", "Sex", "HPV/P16 status"]]
    centres: dict[str, tuple[int, int, int]] = {}
    answers: dict[str, list[int]] = {"ge": [], "toshiba": []}
    for pid, maker, domain, status, centre in [("OPC-00001", "GE MEDICAL SYSTEMS", "ge", "positive", (8, 20, 24)),
                                               ("OPC-00002", "TOSHIBA", "toshiba", "Negative", (10, 6, 6)),
                                               ("OPC-00003", "GE MEDICAL SYSTEMS", None, "Unknown", (9, 20, 20))]:
        p = Patient(pid, name=f"Patient^{pid}").with_uids()
        hu = np.full((n_slices, side, side), 20, dtype=np.int16)
        z, r, c = centre
        hu[z, r, c] = 1000  # a marker voxel at the GTV centroid: must land in the crop's middle
        study = base / pid / "01-01-2000-NA-RT-12345"
        cts = write_ct_series(study / "2.000000-CT-22222", p, maker, hu, "CT", 2)
        rois: dict[str, dict[int, Polygon]] = {"GTV": {k: square((r, c), 2.5) for k in (z - 1, z, z + 1)},
                                               "Parotid_L": {z: square((5, 30), 2)}}
        write_rtstruct(study / "1.000000-RTSTRUCT-33333" / "1-1.dcm", p, cts, rois, "Eclipse", link_sop=False)
        rows.append([pid, "M", status])
        centres[pid] = centre
        if domain:
            answers[domain] = [int(status.lower().startswith("pos"))]
    write_xlsx(root / "OPC-Radiomics-Clinical-Data.xlsx", rows)
    return {"labels": answers, "secrets": list(centres) + ["Patient^OPC"], "dropped": 1}


NS = "http://www.nih.gov"


def _lidc_xml(path: Path, series_uid: str, nodules: list[tuple[str | None, list[tuple[str, float, list]]]]) -> None:
    """An LIDC XML with one reading session; nodules = [(malignancy or None, [(sop, z, edge (row, col))])]."""
    ET.register_namespace("", NS)
    root = ET.Element(f"{{{NS}}}LidcReadMessage")
    header = ET.SubElement(root, f"{{{NS}}}ResponseHeader")
    ET.SubElement(header, f"{{{NS}}}SeriesInstanceUid").text = series_uid
    session = ET.SubElement(root, f"{{{NS}}}readingSession")
    for i, (malignancy, rois) in enumerate(nodules):
        nod = ET.SubElement(session, f"{{{NS}}}unblindedReadNodule")
        ET.SubElement(nod, f"{{{NS}}}noduleID").text = f"Nodule {i}"
        if malignancy is not None:
            ch = ET.SubElement(nod, f"{{{NS}}}characteristics")
            ET.SubElement(ch, f"{{{NS}}}subtlety").text = "3"
            ET.SubElement(ch, f"{{{NS}}}malignancy").text = malignancy
        for sop, z, edge in rois:
            roi = ET.SubElement(nod, f"{{{NS}}}roi")
            ET.SubElement(roi, f"{{{NS}}}imageZposition").text = f"{z:.3f}"
            ET.SubElement(roi, f"{{{NS}}}imageSOP_UID").text = sop
            ET.SubElement(roi, f"{{{NS}}}inclusion").text = "TRUE"
            for r, c in edge:
                em = ET.SubElement(roi, f"{{{NS}}}edgeMap")
                ET.SubElement(em, f"{{{NS}}}xCoord").text = str(int(c))
                ET.SubElement(em, f"{{{NS}}}yCoord").text = str(int(r))
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, xml_declaration=True, encoding="utf-8")


def _ring(r: int, c: int, h: int) -> list[tuple[int, int]]:
    """The boundary pixels of the square of half-side `h` around (r, c), traced clockwise like an edgeMap."""
    top = [(r - h, c + d) for d in range(-h, h)]
    right = [(r + d, c + h) for d in range(-h, h)]
    bottom = [(r + h, c - d) for d in range(-h, h)]
    left = [(r - d, c - h) for d in range(-h, h)]
    return top + right + bottom + left


def make_lidc(root: Path, side: int = 64) -> dict[str, Any]:
    """LIDC-IDRI: GE patient (malignancy 5, 1, 3 and a no-characteristics nodule) and a SIEMENS patient (5)."""
    base = root / "LIDC-IDRI"
    answers: dict[str, list[int]] = {"ge": [], "other": []}
    patients: list[tuple[str, str, str, list[str | None]]] = [
        ("LIDC-IDRI-0001", "GE MEDICAL SYSTEMS", "ge", ["5", "1", "3", None]),
        ("LIDC-IDRI-0002", "SIEMENS", "other", ["5"])]
    for pid, maker, domain, ratings in patients:
        p = Patient(pid, name=f"Patient^{pid}").with_uids()
        series = base / pid / "01-01-2000-NA-NA-42125" / "3000548.000000-NA-86225"
        hu = np.full((7, side, side), -800, dtype=np.int16)
        spots = [(2 + (j % 3), 16 + 10 * j, 20 + 8 * j) for j in range(len(ratings))]
        for k, r, c in spots:
            hu[k, r, c] = 500  # marks the nodule centre: must land in the middle of its crop
        cts = write_ct_series(series, p, maker, hu, "NA", 3000548, z0=-100.0, dz=2.5)
        nodules = []
        for rating, (k, r, c) in zip(ratings, spots, strict=True):
            edge = _ring(r, c, 3)
            rois = [(str(cts[kk].SOPInstanceUID), -100.0 + 2.5 * kk, edge) for kk in (k - 1, k, k + 1)]
            nodules.append((rating, rois))
            if rating in ("1", "5"):
                answers[domain].append(int(rating == "5"))
        _lidc_xml(series / "069.xml", str(cts[0].SeriesInstanceUID), nodules)
    cr = base / "LIDC-IDRI-0001" / "01-01-2000-NA-CHEST-1" / "1.000000-NA-2"
    cr.mkdir(parents=True)
    (cr / "001.xml").write_text('<?xml version="1.0"?><IdriReadMessage xmlns="http://www.nih.gov/idri"/>')
    return {"labels": answers, "secrets": ["LIDC-IDRI-0001", "LIDC-IDRI-0002", "Patient^LIDC"], "dropped": 0}
