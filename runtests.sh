#!/usr/bin/env bash
# Install the test dependencies into a virtualenv and run the whole test suite.
#
#   ./runtests.sh [pytest args...]
#
# Default mode: SQLite + an embedded Redis stand-in (fakeredis), runs anywhere.
# Live mode: set REDIS_URL (e.g. redis://127.0.0.1:6379/15) and DATABASE_URL
# (e.g. postgres://postgres@127.0.0.1:5432/test); the suite then fails, never skips,
# if either service is unreachable.
# Env: PYTHON (interpreter for the venv, default python3), VENV (default .venv),
#      DJANGO (a pip requirement such as "Django>=6,<7" to test another Django),
#      EXTRAS (more extras to install, e.g. "browser" for the Playwright test, which runs
#      when JWT_SESSIONS_BROWSER=1 and needs Debian's chromium at /usr/bin/chromium),
#      WITHOUT (distributions to uninstall after that, e.g. "django-allauth": the suite
#      then proves the optional integration stays optional; its tests skip).
set -euo pipefail
cd "$(dirname "$0")"
VENV="${VENV:-.venv}"
if [[ ! -x "$VENV/bin/python" ]]; then
    "${PYTHON:-python3}" -m venv "$VENV"
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
# Install only when what is asked for changed (pyproject.toml, EXTRAS, DJANGO, WITHOUT):
# reinstalling the package rewrites its files in the venv, which restarts a running demo
# (`runserver` reloads) and wipes its embedded Redis. An installed package gets only the
# requirements.
EXTRAS_WANTED="test${EXTRAS:+,$EXTRAS}"
STAMP="$VENV/.jwt_sessions-installed"
WANTED="$(sha256sum pyproject.toml | cut -d' ' -f1) $EXTRAS_WANTED ${DJANGO:-} -${WITHOUT:-}"
if [[ "$(cat "$STAMP" 2>/dev/null)" != "$WANTED" ]]; then
    if "$VENV/bin/pip" show -q jwt_sessions >/dev/null 2>&1; then
        mapfile -t REQUIREMENTS < <("$VENV/bin/python" - "$EXTRAS_WANTED" <<'PY'
import sys
try:
    import tomllib
except ImportError:  # Python 3.10: pip's own copy of tomli
    from pip._vendor import tomli as tomllib
with open("pyproject.toml", "rb") as file:
    project = tomllib.load(file)["project"]
print(*project["dependencies"], sep="\n")
for extra in sys.argv[1].split(","):
    print(*project["optional-dependencies"][extra], sep="\n")
PY
        )
        "$VENV/bin/pip" install -q "${REQUIREMENTS[@]}" ${DJANGO:+"$DJANGO"}
    else
        "$VENV/bin/pip" install -q -e ".[$EXTRAS_WANTED]" ${DJANGO:+"$DJANGO"}
    fi
    if [[ -n "${WITHOUT:-}" ]]; then
        # shellcheck disable=SC2086  # a list of names
        "$VENV/bin/pip" uninstall -q -y $WITHOUT
    fi
    echo "$WANTED" > "$STAMP"
fi
exec "$VENV/bin/python" -m pytest "$@"
