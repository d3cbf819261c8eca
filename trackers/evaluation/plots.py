"""OTB success and precision plots drawn with OpenCV into one PNG.

matplotlib is not a dependency of siamtrack (and, next to PySide6 6.12, it makes
the interpreter abort at exit), so the two plots are drawn by hand: axes, ticks,
grid, labels, one polyline per tracker and a legend sorted best first, as in
the OTB papers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from trackers.evaluation.metrics import PRECISION_AT, PRECISION_THRESHOLDS, SUCCESS_THRESHOLDS
from trackers.evaluation.report import EvalReport

PANEL_W, PANEL_H = 640, 520
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 78, 24, 48, 62
FONT = cv2.FONT_HERSHEY_SIMPLEX
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
GRID = (225, 225, 225)

# BGR; a colour-blind-friendly qualitative palette (Okabe-Ito) plus a few extras.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (178, 114, 0),  # blue
    (0, 94, 213),  # vermillion
    (115, 158, 0),  # bluish green
    (167, 121, 204),  # reddish purple
    (0, 159, 230),  # orange
    (233, 180, 86),  # sky blue
    (66, 228, 240),  # yellow
    (0, 0, 0),  # black
    (128, 128, 128),  # grey
    (60, 20, 220),  # crimson
)


@dataclass(frozen=True)
class Curve:
    label: str
    x: NDArray[np.float64]
    y: NDArray[np.float64]
    colour: tuple[int, int, int]


class _Axes:
    """Maps data coordinates into one panel's plotting rectangle."""

    def __init__(self, x_range: tuple[float, float], y_range: tuple[float, float]) -> None:
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_range
        self.left = MARGIN_LEFT
        self.right = PANEL_W - MARGIN_RIGHT
        self.top = MARGIN_TOP
        self.bottom = PANEL_H - MARGIN_BOTTOM

    def px(self, x: float, y: float) -> tuple[int, int]:
        u = self.left + (x - self.x0) / (self.x1 - self.x0) * (self.right - self.left)
        v = self.bottom - (y - self.y0) / (self.y1 - self.y0) * (self.bottom - self.top)
        return (round(u), round(v))


def _text(
    image: NDArray[np.uint8],
    text: str,
    org: tuple[int, int],
    scale: float = 0.5,
    colour: tuple[int, int, int] = BLACK,
    anchor: str = "left",
    thickness: int = 1,
) -> None:
    """Put text with its baseline at org; ``anchor`` (left, center, right) aligns it in x."""
    (w, _), _ = cv2.getTextSize(text, FONT, scale, thickness)
    x, y = org
    if anchor == "center":
        x -= w // 2
    elif anchor == "right":
        x -= w
    cv2.putText(image, text, (x, y), FONT, scale, colour, thickness, cv2.LINE_AA)


def _vertical_text(
    image: NDArray[np.uint8], text: str, centre: tuple[int, int], scale: float = 0.55
) -> None:
    """Text rotated 90 degrees anticlockwise, centred on ``centre`` (for the y-axis label)."""
    (w, h), base = cv2.getTextSize(text, FONT, scale, 1)
    strip = np.full((h + base + 4, w + 4, 3), 255, dtype=np.uint8)
    cv2.putText(strip, text, (2, h + 2), FONT, scale, BLACK, 1, cv2.LINE_AA)
    strip = cv2.rotate(strip, cv2.ROTATE_90_COUNTERCLOCKWISE)
    sh, sw = strip.shape[:2]
    x = max(centre[0] - sw // 2, 0)
    y = max(centre[1] - sh // 2, 0)
    region = image[y : y + sh, x : x + sw]
    np.minimum(region, strip[: region.shape[0], : region.shape[1]], out=region)


def _panel(
    title: str,
    x_label: str,
    y_label: str,
    x_ticks: Sequence[float],
    x_range: tuple[float, float],
    x_fmt: str,
    curves: Sequence[Curve],
    legend_corner: str,
) -> NDArray[np.uint8]:
    image = np.full((PANEL_H, PANEL_W, 3), 255, dtype=np.uint8)
    axes = _Axes(x_range, (0.0, 1.0))
    y_ticks = np.linspace(0.0, 1.0, 11)
    for tx in x_ticks:
        cv2.line(image, axes.px(tx, 0.0), axes.px(tx, 1.0), GRID, 1)
        u, v = axes.px(tx, 0.0)
        cv2.line(image, (u, v), (u, v + 5), BLACK, 1)
        _text(image, format(tx, x_fmt), (u, v + 20), 0.45, anchor="center")
    for ty in y_ticks:
        cv2.line(image, axes.px(x_range[0], ty), axes.px(x_range[1], ty), GRID, 1)
        u, v = axes.px(x_range[0], ty)
        cv2.line(image, (u - 5, v), (u, v), BLACK, 1)
        _text(image, f"{ty:.1f}", (u - 8, v + 5), 0.45, anchor="right")
    cv2.rectangle(image, (axes.left, axes.top), (axes.right, axes.bottom), BLACK, 1)

    for curve in curves:
        points = np.array(
            [axes.px(float(x), float(y)) for x, y in zip(curve.x, curve.y, strict=True)],
            dtype=np.int32,
        )
        cv2.polylines(image, [points.reshape(-1, 1, 2)], False, curve.colour, 2, cv2.LINE_AA)

    _text(image, title, (PANEL_W // 2, 30), 0.65, anchor="center", thickness=1)
    _text(image, x_label, ((axes.left + axes.right) // 2, PANEL_H - 16), 0.55, anchor="center")
    _vertical_text(image, y_label, (20, (axes.top + axes.bottom) // 2))
    _legend(image, axes, curves, legend_corner)
    return image


def _legend(image: NDArray[np.uint8], axes: _Axes, curves: Sequence[Curve], corner: str) -> None:
    """A boxed legend in the ``corner`` ("upper right" or "lower right") the curves leave free.

    Success curves fall towards high thresholds, so their upper right is empty;
    precision curves rise, so theirs is the lower right (OTB's own layout).
    """
    if not curves:
        _text(image, "no completed sequences", axes.px(0.0, 0.5), 0.6)
        return
    scale, line_h = 0.45, 20
    width = max(cv2.getTextSize(c.label, FONT, scale, 1)[0][0] for c in curves) + 48
    height = line_h * len(curves) + 10
    x0 = axes.right - 10 - width
    y0 = axes.top + 10 if corner == "upper right" else axes.bottom - 10 - height
    cv2.rectangle(image, (x0, y0), (x0 + width, y0 + height), WHITE, -1)
    cv2.rectangle(image, (x0, y0), (x0 + width, y0 + height), (160, 160, 160), 1)
    for i, curve in enumerate(curves):
        y = y0 + 8 + line_h * i + line_h // 2
        cv2.line(image, (x0 + 8, y), (x0 + 34, y), curve.colour, 2, cv2.LINE_AA)
        _text(image, curve.label, (x0 + 40, y + 5), scale)


def _sorted_curves(
    curves: dict[str, NDArray[np.float64]],
    score: dict[str, float],
    x: NDArray[np.float64],
    fmt: str,
    colours: dict[str, tuple[int, int, int]],
) -> list[Curve]:
    names = sorted(curves, key=lambda n: -score[n])
    return [Curve(f"{n} [{format(score[n], fmt)}]", x, curves[n], colours[n]) for n in names]


def render_plot(report: EvalReport) -> NDArray[np.uint8]:
    """The success and precision plots side by side, as a BGR image."""
    success = report.success_curves
    precision = report.precision_curves
    # One colour per tracker in both panels, whatever the legend order.
    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(report.trackers)}
    auc_scores = {n: float(np.mean(c)) for n, c in success.items()}
    prec_scores = {n: float(c[PRECISION_AT]) for n, c in precision.items()}
    left = _panel(
        "Success plots of OPE",
        "Overlap threshold",
        "Success rate",
        [float(t) for t in np.linspace(0.0, 1.0, 11)],
        (0.0, 1.0),
        ".1f",
        _sorted_curves(success, auc_scores, SUCCESS_THRESHOLDS, ".3f", colours),
        "upper right",
    )
    right = _panel(
        "Precision plots of OPE",
        "Location error threshold (px)",
        "Precision",
        [float(t) for t in range(0, 51, 5)],
        (0.0, 50.0),
        ".0f",
        _sorted_curves(precision, prec_scores, PRECISION_THRESHOLDS, ".3f", colours),
        "lower right",
    )
    return np.hstack([left, right])


def plot_path(path: str | Path) -> Path:
    """Where ``write_plot(report, path)`` writes: ``path``, with ``.png`` added when it has no suffix."""
    path = Path(path)
    return path.with_suffix(".png") if not path.suffix else path


def write_plot(report: EvalReport, path: str | Path) -> Path:
    """Write the success and precision plots side by side to ``plot_path(path)`` (PNG), atomically:
    a full disk leaves the earlier file as it was. Returns the path written."""
    from trackers.output import write_bytes

    path = plot_path(path)
    ok, data = cv2.imencode(".png", render_plot(report))
    if not ok:
        raise OSError(f"could not encode the plot for {path}")
    # imencode + a byte write rather than imwrite: imwrite cannot take non-ASCII paths on Windows.
    write_bytes(path, data.tobytes())
    return path
