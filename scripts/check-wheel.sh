#!/usr/bin/env bash
# Build the wheel, install it (not editable) into a fresh venv outside the checkout, and run the
# installed emotions-data from another working directory (scripts/check_wheel.py: doctor,
# agreement, build-variants, baseline train --config tiny). Run by scripts/test.sh after
# scripts/setup.sh.
#
# The dependencies (torch and CUDA libraries: ~6 GB, ~6 minutes to install) live in a venv of
# their own under the cache, installed from the wheel's own requirements with
# scripts/constraints.txt and keyed on a hash of both, so an unchanged set costs seconds; the
# fresh venv sees it through a .pth file and `pip check` proves the wheel's requirements are met.
# CHECK_WHEEL_FULL=1 installs every dependency into the fresh venv instead.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3.11}
CACHE=${EMOTIONS_DATA_CACHE:-$HOME/.cache/emotions-data}
# The project venv builds the wheel (it has setuptools, so no isolated build env is made).
BUILD_PY=${BUILD_PYTHON:-$ROOT/.venv/bin/python}
CONSTRAINTS="$ROOT/scripts/constraints.txt"
log() { printf '[check-wheel] %s\n' "$*" >&2; }
# this machine's pip configuration names index folders that do not exist; pip says so per package
quiet_pip() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
started=$(date +%s)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/emotions-data-wheel.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# Build from a copy of the tracked and untracked (not ignored) files: an in-tree build would
# reuse a stale build/ folder and pack modules that no longer exist.
mkdir "$WORK/src"
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$ROOT" ls-files -z --cached --others --exclude-standard \
        | (cd "$ROOT" && tar --null --ignore-failed-read -T - -cf - 2>/dev/null) \
        | tar -xf - -C "$WORK/src"
else  # not a git checkout (an unpacked archive): everything but the local build products
    tar -C "$ROOT" --exclude=./.venv --exclude=./build --exclude='*.egg-info' -cf - . \
        | tar -xf - -C "$WORK/src"
fi
quiet_pip "$BUILD_PY" -m pip wheel -q --no-deps --no-build-isolation -w "$WORK/dist" "$WORK/src"
wheel=$(ls "$WORK"/dist/emotions_data-*.whl)
listing=$("$BUILD_PY" -m zipfile -l "$wheel")
for want in annotation/variants.yaml annotation/taxonomies/emotions6.yaml \
    annotation/protocols/emotions.yaml annotation/label_configs/emotions6.xml \
    baselines/configs/tiny.yaml baselines/configs/avcpnet.yaml configs/prepare.yaml \
    configs/profiles/example.yaml annotation/roster.example.csv \
    scripts/labelstudio-requirements.txt; do
    grep -q "^emotions_data/bundled/$want " <<<"$listing" \
        || { log "the wheel lacks emotions_data/bundled/$want"; exit 1; }
done
log "built $(basename "$wheel") in $(($(date +%s) - started)) s"

"$PY" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
if [ "${CHECK_WHEEL_FULL:-0}" = 1 ]; then
    quiet_pip "$VPY" -m pip install -q -c "$CONSTRAINTS" "$wheel"
else
    requires=$("$BUILD_PY" - "$wheel" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as whl:
    meta = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
    lines = whl.read(meta).decode().splitlines()
    # the runtime requirements only: the extras (test, ...) are not installed here
    print("\n".join(l for l in lines if l.startswith("Requires-Dist:") and "extra ==" not in l))
PY
)
    key=$({ cat "$CONSTRAINTS"; echo "$requires"; "$PY" -VV; } | sha256sum | cut -c1-16)
    DEPS="$CACHE/wheel-deps/$key"
    mkdir -p "$CACHE/wheel-deps"
    (
        flock 9
        if [ ! -f "$DEPS/.ready" ]; then
            log "installing the wheel's dependencies at $DEPS (minutes, once per set)"
            rm -rf "$DEPS"
            "$PY" -m venv "$DEPS/venv"
            quiet_pip "$DEPS/venv/bin/python" -m pip install -q -c "$CONSTRAINTS" "$wheel"
            "$DEPS/venv/bin/python" -m pip uninstall -q -y emotions-data
            touch "$DEPS/.ready"
            # a set is several GB: keep this one and the one before (a run may still use it)
            ls -1dt "$CACHE"/wheel-deps/*/ | tail -n +3 | xargs -r rm -rf
        fi
    ) 9>"$CACHE/wheel-deps/.lock"
    # the venv's own seeded setuptools would shadow the one the dependencies need
    "$VPY" -m pip uninstall -q -y setuptools
    purelib() { "$1" -c 'import sysconfig; print(sysconfig.get_path("purelib"))'; }
    purelib "$DEPS/venv/bin/python" >"$(purelib "$VPY")/emotions-data-deps.pth"
    quiet_pip "$VPY" -m pip install -q --no-deps "$wheel"
    "$VPY" -m pip check >/dev/null || { "$VPY" -m pip check; exit 1; }
fi
log "installed into a fresh venv after $(($(date +%s) - started)) s"

mkdir "$WORK/run"
cd "$WORK/run"
env -u PYTHONPATH PATH="$WORK/venv/bin:$PATH" "$VPY" "$ROOT/scripts/check_wheel.py"
log "done in $(($(date +%s) - started)) s"
