#!/usr/bin/env bash
# medmm's two commands (see README): `bash scripts/dev.sh demo` and `bash scripts/dev.sh test`
# (`wheel-smoke`: build the wheel, install it outside the checkout and smoke-test it; run by .ci/run).
# Each creates .venv when missing and installs the pinned requirements (torch==2.13.0 CPU
# beside the rest, in requirements.txt); nothing is downloaded at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
VENV=.venv
STAMP="$VENV/.medmm-installed"

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
  fi
  # Reinstall only when a requirements file or pyproject changed since the last install.
  local want
  want=$(cat requirements.txt requirements-dev.txt pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e .
    echo "$want" > "$STAMP"
  fi
}

cmd="${1:-}"
shift || true
case "$cmd" in
  setup) setup ;;
  demo)
    setup
    exec "$VENV/bin/python" -m medmm.demo "$@"
    ;;
  test)
    setup
    # pytest exits 5 when no test ran; `set -e` turns that (and any failure) into a failed run.
    exec "$VENV/bin/python" -m pytest -q "$@"
    ;;
  wheel-smoke)
    setup
    exec bash scripts/wheel_smoke.sh "$@"
    ;;
  lint)
    setup
    # ruff (the rule set and why: pyproject.toml [tool.ruff]) and mypy on the packages that pass it
    # ([tool.mypy] files); run by .ci/run before the tests.
    "$VENV/bin/ruff" check --no-cache medmm tests bench scripts
    exec "$VENV/bin/mypy"
    ;;
  bench)
    setup
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-bench.txt
    exec "$VENV/bin/python" -m bench "$@"
    ;;
  *)
    echo "usage: bash scripts/dev.sh demo|test|lint|wheel-smoke|bench|setup" >&2
    exit 2
    ;;
esac
