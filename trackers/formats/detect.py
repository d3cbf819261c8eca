"""Tell an annotation's format from its name and content (``siamtrack convert`` without ``--from``).

Folders, by the files in them:

1. ``groundtruth_rect.txt`` (or ``groundtruth_rect.N.txt``): otb
2. ``groundtruth.txt`` with a ``sequence`` file or ``color/``: vot
3. ``groundtruth.txt`` with ``full_occlusion.txt`` or ``out_of_view.txt``: lasot
4. ``groundtruth.txt`` otherwise (with or without GOT's label files): got10k
5. ``Annotations/``, or the folder is ``Annotations``: voc
6. ``obj.data``, ``obj.names``, ``obj_train_data/``, ``labels/``, ``classes.txt`` or
   Ultralytics' ``data.yaml``: yolo
7. ``*.json`` files with LabelMe's ``shapes``: labelme

Files:

1. ``*.json``: labelstudio if it holds a ``videorectangle`` result, labelme if it
   has LabelMe's ``shapes`` (the folder is read), otherwise coco
2. ``*.xml`` whose top element is ``<annotations>``: cvat
3. ``groundtruth_rect*.txt``: otb
4. a file of a GOT-10k, LaSOT or VOT folder (``groundtruth.txt``, ``*.label``, ...): as its folder
5. otherwise by the first line: column names is csv, four numbers is otb,
   ``fn,name,id,x,y,w,h`` is darklabel, six to ten numbers starting with a frame
   number is mot.
"""

from __future__ import annotations

from pathlib import Path

from trackers.formats import csvtable, cvat, got10k, labelme, labelstudio, lasot, mot, otb, voc, vot, yolo
from trackers.formats.common import FormatError

_LASOT_MARKERS = (lasot.FULL_OCCLUSION, lasot.OUT_OF_VIEW)
_GOT_FILES = frozenset({got10k.GROUNDTRUTH, *got10k.ANNOTATION_FILES, *_LASOT_MARKERS, *vot.ANNOTATION_FILES})
_YOLO_MARKERS = (yolo.DATA, yolo.NAMES, yolo.LABELS, "labels", "classes.txt", *yolo.ULTRALYTICS_DATA)


def _folder_format(folder: Path) -> str | None:
    if (folder / otb.GROUNDTRUTH).is_file() or any(folder.glob("groundtruth_rect.*.txt")):
        return "otb"
    if vot.is_vot_folder(folder):
        return "vot"
    if (folder / got10k.GROUNDTRUTH).is_file():
        return "lasot" if any((folder / m).is_file() for m in _LASOT_MARKERS) else "got10k"
    if (folder / voc.ANNOTATIONS).is_dir() or folder.name == voc.ANNOTATIONS:
        return "voc"
    if any((folder / m).exists() for m in _YOLO_MARKERS):
        return "yolo"
    first_json = next(iter(sorted(folder.glob("*.json"))), None)
    if first_json is not None and labelme.looks_like(first_json):
        return "labelme"
    return None


def detect_format(path: str | Path) -> str:
    """The name of ``path``'s format in FORMATS; FormatError when it cannot be told."""
    path = Path(path)
    if not path.exists():
        raise FormatError(path, "no such file or folder")
    if path.is_dir():
        found = _folder_format(path)
        if found is None:
            raise FormatError(path, "cannot tell the annotation format of this folder: give --from")
        return found
    suffix = path.suffix.lower()
    if suffix == ".json":
        if labelstudio.looks_like(path):
            return "labelstudio"
        if labelme.looks_like(path):
            return "labelme"
        return "coco"
    if suffix == ".xml":
        if cvat.looks_like(path):
            return "cvat"
        raise FormatError(path, "not CVAT for video XML; for Pascal VOC give the folder holding Annotations/")
    if path.name.startswith("groundtruth_rect") and suffix == ".txt":
        return "otb"
    if path.name in _GOT_FILES:
        found = _folder_format(path.parent)
        if found in ("got10k", "lasot", "vot"):
            return found
    if csvtable.csv_looks_like(path):
        return "csv"
    if otb.looks_like(path):
        return "otb"
    if csvtable.darklabel_looks_like(path):
        return "darklabel"
    if mot.looks_like(path):
        return "mot"
    raise FormatError(path, "cannot tell the annotation format of this file: give --from")
