"""Copy a trained checkpoint into ``resources/weights/`` as fp16, keeping its provenance.

    python tools/ship_weights.py out/siamrpn_cpu.pt resources/weights/siamrpn.pt

fp16 halves the file; every tracker loads it back as fp32 (``trackers.weights``). The
provenance gains ``shipped_from`` and ``shipped_at``.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trackers.weights import save_checkpoint  # noqa: E402


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    source, target = Path(argv[0]), Path(argv[1])
    data = torch.load(source, map_location="cpu", weights_only=True)
    provenance = dict(data.get("provenance", {}))
    provenance["shipped_from"] = source.name
    provenance["shipped_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    save_checkpoint(target, data["state_dict"], architecture=data["architecture"], config=data["config"],
                    provenance=provenance, half=True)
    print(f"{target}: {target.stat().st_size / 1e6:.1f} MB, {data['architecture']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
