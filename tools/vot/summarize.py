"""Print the scalar results of a VOT toolkit (0.7.4) analysis report as a table.

    python3 tools/vot/summarize.py /tmp/vot_ws            # the newest analysis/*.json
    python3 tools/vot/summarize.py /tmp/vot_ws/analysis/<stamp>.json

``vot analysis`` writes ``analysis/<timestamp>.json`` with, per experiment, the
analyses' parameters and ``results[analysis][tracker]`` tuples in the order each
analysis describes them (``vot/analysis/*.py``). Only the scalar measures are printed;
curves (EAO curve, success plot) are summarised by their mean where that is a score.
Standard library only: it runs under any python, the toolkit's included.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# analysis type -> labels of the tuple it yields; None drops that element.
MEASURES = {
    "vot.analysis.supervised.AverageAccuracyRobustness": ("accuracy", "failures/seq", None, None),
    "vot.analysis.failures.CumulativeFailureCount": ("failures total",),
    "vot.analysis.supervised.EAOScore": ("EAO",),
    "vot.analysis.accuracy.AverageAccuracy": ("average overlap",),
}
# The unsupervised success plot: a list of (threshold, fraction) points; its mean
# fraction is the OTB-style AUC.
SUCCESS_PLOT = "vot.analysis.accuracy.AverageSuccessPlot"


def _report_file(path: Path) -> Path:
    if path.is_file():
        return path
    reports = sorted((path / "analysis").glob("*.json"))
    if not reports:
        raise SystemExit(f"no analysis/*.json under {path}: run `vot analysis` first")
    return reports[-1]


def summarize(report: dict) -> list[tuple[str, str, str, str]]:
    """(tracker, experiment, measure, value) rows."""
    trackers = list(report["trackers"])
    rows = []
    for experiment, data in report["results"].items():
        analyses = data["parameters"]["analyses"]
        for analysis, per_tracker in zip(analyses, data["results"]):
            kind = analysis["type"]
            for tracker, values in zip(trackers, per_tracker):
                if kind == SUCCESS_PLOT:
                    points = values[0]
                    auc = sum(p[1] for p in points) / len(points)
                    rows.append((tracker, experiment, "success AUC", f"{auc:.3f}"))
                    continue
                for label, value in zip(MEASURES.get(kind, ()), values):
                    if label is not None:
                        rows.append((tracker, experiment, label, f"{value:.3f}"))
    # Grouped by tracker, in the report's tracker order (the sort is stable).
    return sorted(rows, key=lambda row: trackers.index(row[0]))


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    path = _report_file(Path(argv[0]))
    report = json.loads(path.read_text(encoding="utf-8"))
    rows = [("tracker", "experiment", "measure", "value"), *summarize(report)]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    print(f"{path} (vot-toolkit {report.get('toolkit', '?')})")
    for row in rows:
        cells = [cell.ljust(widths[i]) if i < 3 else cell.rjust(widths[i]) for i, cell in enumerate(row)]
        print("  ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
