#!/usr/bin/env bash
# Wheel smoke (run by .ci/run after the tests): medmm must work installed from its wheel, with no
# source checkout in sight. Steps:
#   1. copy the files git knows (tracked + untracked-not-ignored, like a fresh clone) to a temp dir
#      and build the wheel there (no stale build/ or egg-info can leak into it);
#   2. a fresh venv outside the checkout; the heavy dependencies are shared with the checkout's
#      .venv through a .pth line (medmm itself is NOT: that site-packages holds only the editable
#      finder, whose .pth is not processed from there); first, with the clean copy on PYTHONPATH
#      (a plain source checkout, nothing installed), then with the wheel installed --no-deps;
#   3. from a temp working directory: every packaged data file of the checkout is in the install,
#      `medmm check` flags a misspelling (transcription), `medmm models build-tiny` writes a
#      model the hf backend loads, `medmm app` answers /_stcore/health, then is stopped.
# Usage: bash scripts/wheel_smoke.sh [--keep]   (PYTHON / DEPS_VENV override the defaults)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEPS_VENV="${DEPS_VENV:-$ROOT/.venv}"
PY="$DEPS_VENV/bin/python"
KEEP="${1:-}"
WORK=$(mktemp -d /tmp/medmm-wheel-smoke.XXXXXX)
APP_PID=""
cleanup() {
  if [ -n "$APP_PID" ] && kill -0 "$APP_PID" 2>/dev/null; then kill -- "-$APP_PID" 2>/dev/null || kill "$APP_PID"; fi
  if [ "$KEEP" != "--keep" ]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}
trap cleanup EXIT
step() { printf '[wheel-smoke %5ss] %s\n' "$SECONDS" "$*" >&2; }

step "build the wheel from a clean copy of the tree"
mkdir -p "$WORK/src" "$WORK/dist" "$WORK/run"
git ls-files -z --cached --others --exclude-standard | tar --null -cf - -T - | tar -xf - -C "$WORK/src"
(cd "$WORK/src" && "$PY" -m pip wheel --quiet --disable-pip-version-check --no-deps --no-build-isolation \
  -w "$WORK/dist" .)
WHEEL=$(ls "$WORK"/dist/medmm-*.whl)

step "a fresh venv outside the checkout (dependencies shared with $DEPS_VENV)"
"$PY" -m venv --without-pip "$WORK/venv"
SITE=$("$WORK/venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
DEPS_SITE=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
echo "$DEPS_SITE" > "$SITE/zz_medmm_smoke_shared_deps.pth"
cd "$WORK/run"
V="$WORK/venv/bin"
printf 'EXAMINATION: CT chest.\n\nFINDINGS: There is a small nodlue in the right upper lobe.\n\nIMPRESSION: Small right upper lobe nodule.\n' > report.txt

step "before the install: a plain source checkout on PYTHONPATH finds its package data too"
PYTHONPATH="$WORK/src" "$V/python" -m medmm.cli check report.txt --json > plain.json
PYTHONPATH="$WORK/src" "$V/python" - "$WORK/src" <<'EOF'
import json, sys
from pathlib import Path
import medmm.config, medmm.models.tiny as tiny
assert Path(medmm.config.__file__).resolve().is_relative_to(Path(sys.argv[1]).resolve()), medmm.config.__file__
assert "transcription" in [f["type"] for f in json.load(open("plain.json"))["flags"]]
assert tiny.load_tiny_config("llava").family == "llava" and tiny.training_corpus()
print("plain checkout: transcription flag, packaged tiny config and tokenizer corpus found")
EOF

step "install $(basename "$WHEEL")"
"$PY" -m pip --python "$V/python" install --quiet --disable-pip-version-check --no-deps "$WHEEL"
step "the installed medmm comes from the wheel, and every packaged data file is there"
"$V/python" - "$ROOT" "$SITE" <<'EOF'
import subprocess, sys
from pathlib import Path
import medmm, medmm.config as config
root, site = Path(sys.argv[1]), Path(sys.argv[2]).resolve()
where = Path(medmm.__file__).resolve()
assert where.is_relative_to(site), f"medmm imported from {where}, not from the wheel in {site}"
assert not any(Path(p or ".").resolve() == root for p in sys.path), "the checkout is on sys.path"
tracked = subprocess.run(["git", "-C", str(root), "ls-files", "--cached", "--others", "--exclude-standard", "medmm"],
                         capture_output=True, text=True, check=True).stdout.split()
data = [p[len("medmm/"):] for p in tracked if not p.endswith(".py") or p.startswith("medmm/_apps/")]
missing = [p for p in data if not config.files(p).is_file()]
assert not missing, f"package data missing from the wheel: {missing}"
print(f"medmm from {where.parent}; {len(data)} data files; packaged configs: {config.packaged_configs()}")
EOF

step "medmm check flags a misspelling"
"$V/medmm" check report.txt --json > check.json 2> check.err || { cat check.err >&2; exit 1; }
"$V/python" - <<'EOF'
import json
result = json.load(open("check.json"))
types = [f["type"] for f in result["flags"]]
assert "transcription" in types, f"no transcription flag for 'nodlue': flags {types}, notes {result.get('notes')}"
print(f"flags: {types}")
EOF

step "medmm models build-tiny writes a model the hf backend loads"
"$V/medmm" models build-tiny --family llava --out tiny-llava
"$V/python" -c "from medmm.models import load; m = load('hf:tiny-llava'); print('loaded', type(m).__name__)"

step "the packaged review app renders (AppTest) and medmm app answers its health endpoint"
"$V/python" -c "from medmm.audit.store import Store; Store('audit.sqlite').close()"
MEDMM_APP_DB="$WORK/run/audit.sqlite" "$V/python" - <<'EOF'
from streamlit.testing.v1 import AppTest
from medmm.config import files
at = AppTest.from_file(str(files("_apps/report_checker.py")), default_timeout=60).run()
assert not at.exception, [e.message for e in at.exception]
assert at.text_input, "expected the login form"
print(f"app page: {len(at.text_input)} text inputs, no exception")
EOF
PORT=$("$V/python" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
setsid "$V/medmm" app --db audit.sqlite --port "$PORT" --address 127.0.0.1 > app.log 2>&1 &
APP_PID=$!
"$V/python" - "$PORT" <<'EOF' || { cat app.log >&2; exit 1; }
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/_stcore/health"
deadline = time.monotonic() + 90
while True:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            body = r.read().decode()
        assert r.status == 200 and body.strip() == "ok", (r.status, body)
        print(f"{url}: {body.strip()}")
        break
    except OSError:
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not answer within 90 s")
        time.sleep(0.5)
EOF
kill -- "-$APP_PID" 2>/dev/null || kill "$APP_PID"
wait "$APP_PID" 2>/dev/null || true
APP_PID=""
step "ok"
