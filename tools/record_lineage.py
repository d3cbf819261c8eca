"""Add to a checkpoint's provenance what an ancestor trained on, touching nothing else.

    python tools/record_lineage.py TARGET ANCESTOR [ANCESTOR ...]

Since the 16th session ``--init`` records this by itself (``inherited_sequences``, see
``trackers.weights.provenance``). Files trained before then name only their own run's
sequences; this tool writes the rest from the ancestors their history names (the README's
Weights section), so ``siamtrack eval`` can mark every sequence they learnt from. The
ancestors' own and inherited sequences are added to TARGET's ``inherited_sequences``; the
tensors are written back exactly as stored (fp16, int8 and their scales untouched), the
zip entries deflated as ``tools/ship_weights.py`` writes them.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from trackers.weights.checkpoint import FORMAT, WeightsError, atomic_torch_save, load_safely  # noqa: E402
from trackers.weights.provenance import learnt_from, read_provenance  # noqa: E402


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    target, ancestors = Path(argv[0]), [Path(a) for a in argv[1:]]
    try:
        data = load_safely(target)
    except WeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not (isinstance(data, dict) and data.get("format") == FORMAT):
        print(f"error: {target} is not a siamtrack checkpoint", file=sys.stderr)
        return 2
    inherited: set[str] = set()
    for ancestor in ancestors:
        learnt = learnt_from(read_provenance(ancestor))
        if not learnt:
            print(f"error: {ancestor} names no training sequences", file=sys.stderr)
            return 2
        inherited |= learnt
    provenance = dict(data.get("provenance") or {})
    before = set(provenance.get("inherited_sequences") or [])
    provenance["inherited_sequences"] = sorted(before | inherited)
    data["provenance"] = provenance
    atomic_torch_save(data, target, deflate=True)
    added = len(set(provenance["inherited_sequences"]) - before)
    print(f"{target}: {added} inherited sequences added ({len(provenance['inherited_sequences'])} in all)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
