"""The export dialog names what each format cannot hold, COCO included (issue 18.1)."""

from __future__ import annotations

from trackers.formats import FIELDS, FORMATS, read_trajectory
from trackers.trajectory import Entry, Origin, Trajectory
from trackers.types import Box


def test_every_format_updates_the_loss_text_and_writes(qtbot, tmp_path):
    from app.qt.widgets.export_dialog import ExportDialog

    trajectory = Trajectory(
        (Entry(Box(1, 2, 30, 20), Origin.KEYFRAME), Entry(Box(2, 2, 30, 20), Origin.TRACKED, 0.5), None),
        frame_size=(64, 48),
        label="car",
    )
    dialog = ExportDialog(trajectory, tmp_path / "clip")
    qtbot.addWidget(dialog)
    for name in FORMATS:
        dialog.format_box.setCurrentIndex(dialog.format_box.findData("otb"))
        dialog.format_box.setCurrentIndex(dialog.format_box.findData(name))
        assert dialog.format == name
        text = dialog.loss_label.text()
        if name == "coco":  # it raised before the text changed, leaving OTB's
            # COCO keeps origin and score; it cannot say how many frames follow the last listed one.
            assert text == "This format cannot hold: " + FIELDS["frame_count"]
        dialog.write()
        hints = {"frame_size": (64, 48), "frame_count": 3}
        back, _ = read_trajectory(dialog.path, name, **hints)
        assert back[0] is not None and back[0].box == Box(1, 2, 30, 20), name
