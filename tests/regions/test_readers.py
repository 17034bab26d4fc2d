"""Readers of public annotation formats (tiny files written here in exactly the distributed format)
and boxes from NIfTI label maps."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from medmm.errors import InputError
from medmm.regions.labelmaps import LabelMapOptions, component_boxes, label_map_regions
from medmm.regions.readers import read_annotations, read_chestxray14, read_ms_cxr, read_rsna_pneumonia, read_vindr_cxr

VINDR = """image_id,rad_id,class_name,x_min,y_min,x_max,y_max
9a5094b2563a1ef3ff50dc5c7ff71345,R11,Aortic enlargement,691.0,1375.0,1653.0,1831.0
9a5094b2563a1ef3ff50dc5c7ff71345,R11,Pleural thickening,1264.0,743.0,1611.0,1019.0
9a5094b2563a1ef3ff50dc5c7ff71345,R11,Pleural thickening,200.0,700.0,400.0,900.0
9a5094b2563a1ef3ff50dc5c7ff71345,R8,Aortic enlargement,700.5,1380.0,1650.0,1820.0
051132a778e61a86eb147c7c6f564dfe,R10,No finding,,,,
051132a778e61a86eb147c7c6f564dfe,R9,No finding,,,,
1c32170b4af4ce1a3030eb8167753b06,R9,Nodule/Mass,10.0,20.0,5.0,40.0
1c32170b4af4ce1a3030eb8167753b06,R9,Nodule/Mass,x,20.0,30.0,40.0
"""

CXR14 = """Image Index,Finding Label,Bbox [x,y,w,h],,,
00013118_008.png,Atelectasis,225.084745762712,547.019216763771,86.7796610169491,79.1864406779661
00014716_007.png,Atelectasis,686.101694915254,131.543442352748,185.491525423729,313.491525423729
00014716_007.png,Effusion,100,200,50,60
00029817_009.png,Nodule,1000,1000,80,80
"""

RSNA = """patientId,x,y,width,height,Target
0004cfab-14fd-4e49-80ba-63a80b6bddd6,,,,,0
00436515-870c-4b36-a041-de91049b9ab4,264.0,152.0,213.0,379.0,1
00436515-870c-4b36-a041-de91049b9ab4,562.0,152.0,256.0,453.0,1
00704310-78a8-4b38-8475-49f4573b2dbb,323.0,577.0,160.0,104.0,2
"""

MSCXR = """dicom_id,category_name,label_text,path,x,y,w,h,image_width,image_height,split
f1a2,Pneumonia,right lower lobe opacity,files/p10/p1/s5/f1a2.jpg,1200,1500,400,300,2539,3050,train
f1a2,Pneumonia,right lower lobe opacity,files/p10/p1/s5/f1a2.jpg,1700,1400,200,200,2539,3050,train
f1a2,Pleural effusion,small left effusion,files/p10/p1/s5/f1a2.jpg,300,2400,500,400,2539,3050,train
b7c9,Cardiomegaly,enlarged heart,files/p11/p2/s6/b7c9.jpg,900,1300,1000,800,2544,3056,test
"""


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


def test_vindr_groups_boxes_by_class_and_radiologist(tmp_path):
    ann = read_vindr_cxr(_write(tmp_path, "annotations_train.csv", VINDR), images_root="/data/train")
    by_id = {a.image_id: a for a in ann}
    a = by_id["9a5094b2563a1ef3ff50dc5c7ff71345"]
    assert a.image_path == "/data/train/9a5094b2563a1ef3ff50dc5c7ff71345.dicom"
    regions = {(r.label, r.annotator): r for r in a.regions}
    assert set(regions) == {("Aortic enlargement", "R11"), ("Pleural thickening", "R11"), ("Aortic enlargement", "R8")}
    thick = regions[("Pleural thickening", "R11")]
    assert [b.as_tuple() for b in thick.boxes] == [(1264.0, 743.0, 1611.0, 1019.0), (200.0, 700.0, 400.0, 900.0)]
    assert thick.boxes[0].slice is None and thick.boxes[0].frame.to_dict() == {"frame": "acquisition"}
    neg = by_id["051132a778e61a86eb147c7c6f564dfe"]
    assert neg.regions == () and neg.negatives == ("No finding",)
    assert by_id["1c32170b4af4ce1a3030eb8167753b06"].regions == ()
    assert ann.problems == ("row 8: empty or inverted box", "row 9: could not convert string to float: 'x'")
    only = read_vindr_cxr(tmp_path / "annotations_train.csv", radiologists=["R8"])
    assert [(r.label, r.annotator) for a in only for r in a.regions] == [("Aortic enlargement", "R8")]


def test_chestxray14_reads_by_position(tmp_path):
    ann = read_chestxray14(_write(tmp_path, "BBox_List_2017.csv", CXR14), images_root="/cxr14/images")
    ids = [a.image_id for a in ann]
    assert ids == ["00013118_008.png", "00014716_007.png"]
    first = ann.images[0].regions[0]
    assert first.label == "Atelectasis"
    assert first.boxes[0].as_tuple() == pytest.approx((225.084745762712, 547.019216763771,
                                                       225.084745762712 + 86.7796610169491,
                                                       547.019216763771 + 79.1864406779661))
    assert ann.images[1].labels == ["Atelectasis", "Effusion"]
    assert ann.images[0].image_path == "/cxr14/images/00013118_008.png" and ann.images[0].width == 1024
    assert ann.problems == ("row 5: box outside the image",)


def test_chestxray14_wrong_header(tmp_path):
    with pytest.raises(InputError, match="BBox_List_2017"):
        read_chestxray14(_write(tmp_path, "x.csv", "a,b,c\n1,2,3\n"))


def test_rsna_negatives_and_several_boxes(tmp_path):
    ann = read_rsna_pneumonia(_write(tmp_path, "stage_2_train_labels.csv", RSNA))
    by_id = {a.image_id: a for a in ann}
    assert by_id["0004cfab-14fd-4e49-80ba-63a80b6bddd6"].negatives == ("pneumonia",)
    pos = by_id["00436515-870c-4b36-a041-de91049b9ab4"]
    assert len(pos.regions) == 1
    assert [b.as_tuple() for b in pos.regions[0].boxes] == [(264.0, 152.0, 477.0, 531.0), (562.0, 152.0, 818.0, 605.0)]
    assert ann.problems == ("row 5: empty patientId or Target not 0/1",)


def test_ms_cxr_phrases(tmp_path):
    ann = read_ms_cxr(_write(tmp_path, "MS_CXR_Local_Alignment_v1.1.0.csv", MSCXR), images_root="/mimic")
    a = ann.images[0]
    assert a.image_path == "/mimic/files/p10/p1/s5/f1a2.jpg" and (a.width, a.height) == (2539, 3050) and a.split == "train"
    pneu = [r for r in a.regions if r.label == "Pneumonia"][0]
    assert pneu.phrase == "right lower lobe opacity"
    assert [b.as_tuple() for b in pneu.boxes] == [(1200.0, 1500.0, 1600.0, 1800.0), (1700.0, 1400.0, 1900.0, 1600.0)]
    assert ann.images[1].split == "test" and ann.problems == ()


def test_missing_columns_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="missing column"):
        read_rsna_pneumonia(_write(tmp_path, "r.csv", "patientId,x,y\n1,2,3\n"))
    with pytest.raises(InputError, match="not found"):
        read_annotations("vindr-cxr", tmp_path / "none.csv")
    with pytest.raises(InputError, match="unknown annotation format"):
        read_annotations("coco", tmp_path / "none.csv")


# --- label maps ------------------------------------------------------------------------------------

def test_component_boxes_sizes_and_connectivity():
    mask = np.zeros((10, 12), dtype=bool)
    mask[1:4, 2:6] = True  # 3 rows x 4 cols
    mask[6, 8] = True  # a single pixel: too small
    mask[7:9, 9:11] = True  # touches the pixel diagonally
    assert component_boxes(mask, LabelMapOptions(min_pixels=4, connectivity=1)) == [(2, 1, 6, 4), (9, 7, 11, 9)]
    assert component_boxes(mask, LabelMapOptions(min_pixels=4, connectivity=2)) == [(2, 1, 6, 4), (8, 6, 11, 9)]
    assert component_boxes(mask, LabelMapOptions(min_pixels=6, min_side=3)) == [(2, 1, 6, 4)]
    assert component_boxes(mask, LabelMapOptions(min_pixels=1, min_side=4)) == []  # 3 rows high


def test_label_map_regions_from_nifti(tmp_path):
    data = np.zeros((20, 16, 6), dtype=np.int16)  # [i = column, j = row, k = slice]
    data[2:6, 3:9, 1] = 2  # label 2 on slice 1: columns 2..5, rows 3..8
    data[12:18, 3:9, 1] = 2  # a second component of label 2
    data[8:11, 10:14, 1] = 4
    for k in range(2, 6):
        data[5:9, 5:9, k] = 4
    path = tmp_path / "labels.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))
    out = label_map_regions(str(path), names={2: "lungs", 4: "heart"}, image_id="S1")
    assert [a.slice for a in out] == [1, 2, 3, 4, 5]
    first = {r.label: [b.as_tuple() for b in r.boxes] for r in out[0].regions}
    assert first == {"lungs": [(2, 3, 6, 9), (12, 3, 18, 9)], "heart": [(8, 10, 11, 14)]}
    assert out[0].regions[0].boxes[0].slice == 1 and (out[0].width, out[0].height) == (20, 16)
    sampled = label_map_regions(str(path), names={4: "heart"}, options=LabelMapOptions(max_slices=2))
    assert [a.slice for a in sampled] == [1, 5]
    assert [a.slice for a in label_map_regions(data, options=LabelMapOptions(slice_step=2))] == [1, 3, 5]


def test_label_map_boxes_match_the_synth_manifest(tmp_path):
    """Independent truth: the boxes medmm synth writes into its manifest for each finding."""
    import json
    import subprocess
    import sys

    out = tmp_path / "synth"
    subprocess.run([sys.executable, "-m", "medmm.cli", "synth", "--out", str(out), "--n", "4", "--seed", "3", "--small"],
                   check=True, capture_output=True)
    checked = 0
    for line in (out / "manifest.jsonl").read_text().splitlines():
        study = json.loads(line)
        for f in study["findings"]:
            by_slice = {}
            for b in f["boxes"]:
                by_slice.setdefault((b["image"], b["slice"]), []).append(b)
            for (image, k), boxes in by_slice.items():
                lm = str(out / study["images"][image]["label_map"])
                regs = label_map_regions(lm, names={f["label"]: f["type"]}, options=LabelMapOptions(min_pixels=1, min_side=1))
                (img,) = [a for a in regs if a.slice == k]
                got = [bx.as_tuple() for r in img.regions for bx in r.boxes]
                union = (min(g[0] for g in got), min(g[1] for g in got), max(g[2] for g in got), max(g[3] for g in got))
                assert union == (boxes[0]["x1"], boxes[0]["y1"], boxes[0]["x2"], boxes[0]["y2"])
                checked += 1
    assert checked >= 3
