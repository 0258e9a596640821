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
"$VENV/bin/pip" install -q -e ".[test${EXTRAS:+,$EXTRAS}]" ${DJANGO:+"$DJANGO"}
if [[ -n "${WITHOUT:-}" ]]; then
    # shellcheck disable=SC2086  # a list of names
    "$VENV/bin/pip" uninstall -q -y $WITHOUT
fi
exec "$VENV/bin/python" -m pytest "$@"
