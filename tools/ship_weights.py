"""Copy a trained checkpoint into ``resources/weights/``, fp16 unless asked otherwise, keeping its provenance.

    python tools/ship_weights.py [--int8 MIN_ELEMENTS | --fp32] SOURCE TARGET
    python tools/ship_weights.py out/siamfc_cpu.pt resources/weights/siamfc.pt
    python tools/ship_weights.py --int8 500000 out/siamrpn_c45b.pt resources/weights/siamrpn.pt

fp16 halves the file; every tracker loads it back as fp32 (``trackers.weights.checkpoint``).
The file's entries are deflated (lossless; ``torch.load`` reads them as they are).
``--int8 N`` stores each weight of at least N elements as int8 with a scale per output
channel (a quarter of fp32). For SiamRPN, 500000 catches the two up-channel exemplar
convs (17.7 M of its 22 M parameters), the two search convs and conv2-5. The provenance
gains ``shipped_from``, ``shipped_at``, ``int8`` and ``stored`` ("fp16" or "fp32").

``--fp32`` keeps every tensor as trained (deflated only): the file is then bit for bit the
model a validation figure was measured on. Rounding SiamFC's weights to fp16 is a small
change, but tracking is chaotic: for the 19th session's SiamFC it moved the 8-item
validation mean from 0.501 to 0.463 (one lost track more), larger than the margins its
choice rules ask for, so SiamFC ships in fp32 since then (twice the size, 8.7 MB).
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trackers.weights.checkpoint import WeightsError, load_own_checkpoint, save_checkpoint  # noqa: E402


def main(argv: list[str]) -> int:
    min_int8, half = 0, True
    if len(argv) == 4 and argv[0] == "--int8" and argv[1].isdigit() and int(argv[1]) > 0:
        min_int8, argv = int(argv[1]), argv[2:]
    elif len(argv) == 3 and argv[0] == "--fp32":
        half, argv = False, argv[1:]
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    source, target = Path(argv[0]), Path(argv[1])
    try:
        state, meta = load_own_checkpoint(source)
    except WeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    architecture = meta["architecture"]
    int8 = sorted(k for k, v in state.items() if min_int8 and v.is_floating_point() and v.dim() >= 2
                  and v.numel() >= min_int8)
    provenance = dict(meta.get("provenance", {}))
    provenance["shipped_from"] = source.name
    provenance["shipped_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    provenance["int8"] = int8
    provenance["stored"] = "fp16" if half else "fp32"
    save_checkpoint(target, state, architecture=architecture, config=meta.get("config", {}),
                    provenance=provenance, half=half, int8=int8, deflate=True)
    stored = ", ".join(int8) or "none"
    print(f"{target}: {target.stat().st_size / 1e6:.1f} MB, {architecture}, {provenance['stored']}, "
          f"int8: {stored}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
