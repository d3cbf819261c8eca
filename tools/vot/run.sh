#!/usr/bin/env bash
# Offline VOT toolkit evaluation of siamtrack trackers over TraX (see README.md here).
#
#   tools/vot/run.sh [WORKSPACE] [TRACKER...]        default: /tmp/vot_ws cv-csrt
#
# Environment: VOTVENV (default /tmp/votvenv), TRAX_SITE (default /tmp/trax_site),
# APP_PYTHON (default <repo>/.venv/bin/python), EXTRA (more make_workspace.py options,
# e.g. "--weights siamfc=/path/to/siamfc.pt").
# The toolkit lives in its own venv and the TraX bindings in their own folder: neither
# touches the app's venv.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VOTVENV=${VOTVENV:-/tmp/votvenv}
TRAX_SITE=${TRAX_SITE:-/tmp/trax_site}
APP_PYTHON=${APP_PYTHON:-$REPO/.venv/bin/python}
WORKSPACE=${1:-/tmp/vot_ws}
shift || true
TRACKERS=("$@")
[ ${#TRACKERS[@]} -gt 0 ] || TRACKERS=(cv-csrt)

if [ ! -x "$VOTVENV/bin/vot" ]; then
    python3 -m venv "$VOTVENV"
    # 0.9.0 is broken on Python 3.11 and in the supervised experiment; 0.7.4 with
    # attributee 0.1.9 runs the whole pipeline (shared/docs/ECOSYSTEM.md section 1).
    "$VOTVENV/bin/pip" install vot-toolkit==0.7.4 attributee==0.1.9
fi
if [ ! -f "$TRAX_SITE/trax/__init__.py" ]; then
    # The bindings for the tracker side, outside the app's venv (vot-trax needs six).
    "$VOTVENV/bin/pip" install --target "$TRAX_SITE" --no-deps vot-trax==4.0.2 six
fi

args=()
ids=()
for t in "${TRACKERS[@]}"; do
    args+=(--tracker "$t")
    ids+=("siamtrack_${t//-/_}")
done
# shellcheck disable=SC2086 # EXTRA is a list of options
"$APP_PYTHON" "$REPO/tools/vot/make_workspace.py" "$WORKSPACE" --trax-site "$TRAX_SITE" \
    --python "$APP_PYTHON" "${args[@]}" ${EXTRA:-}

cd "$WORKSPACE"
for id in "${ids[@]}"; do
    "$VOTVENV/bin/vot" evaluate --workspace "$WORKSPACE" "$id"
done
"$VOTVENV/bin/vot" analysis --workspace "$WORKSPACE" "${ids[@]}"
"$VOTVENV/bin/python" "$REPO/tools/vot/summarize.py" "$WORKSPACE"
