"""Copy a trained checkpoint into ``resources/weights/`` as fp16, keeping its provenance.

    python tools/ship_weights.py [--int8 MIN_ELEMENTS] SOURCE TARGET
    python tools/ship_weights.py out/siamfc_cpu.pt resources/weights/siamfc.pt
    python tools/ship_weights.py --int8 500000 out/siamrpn_c45b.pt resources/weights/siamrpn.pt

fp16 halves the file; every tracker loads it back as fp32 (``trackers.weights.checkpoint``).
The file's entries are deflated (lossless; ``torch.load`` reads them as they are).
``--int8 N`` stores each weight of at least N elements as int8 with a scale per output
channel (a quarter of fp32). For SiamRPN, 500000 catches the two up-channel exemplar
convs (17.7 M of its 22 M parameters), the two search convs and conv2-5. The provenance
gains ``shipped_from``, ``shipped_at`` and ``int8``.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trackers.weights.checkpoint import WeightsError, load_own_checkpoint, save_checkpoint  # noqa: E402


def main(argv: list[str]) -> int:
    min_int8 = 0
    if len(argv) == 4 and argv[0] == "--int8" and argv[1].isdigit() and int(argv[1]) > 0:
        min_int8, argv = int(argv[1]), argv[2:]
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
    save_checkpoint(target, state, architecture=architecture, config=meta.get("config", {}),
                    provenance=provenance, half=True, int8=int8, deflate=True)
    stored = ", ".join(int8) or "none"
    print(f"{target}: {target.stat().st_size / 1e6:.1f} MB, {architecture}, int8: {stored}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
