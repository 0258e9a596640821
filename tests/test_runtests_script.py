"""./runtests.sh beside a running demo: with nothing changed it installs nothing, so the
package's files in the virtualenv stay as they are and `runserver` does not restart (which
would wipe the demo's embedded Redis)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def installed_files() -> dict[str, int]:
    """What a reinstall rewrites: the package's entries in site-packages, by mtime."""
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    return {path.name: path.stat().st_mtime_ns for path in site.iterdir()
            if "jwt_sessions" in path.name}


def runtests(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "VENV": str(Path(sys.executable).parent.parent)}
    return subprocess.run([str(ROOT / "runtests.sh"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600, check=True)


def test_a_second_run_with_nothing_changed_leaves_the_install_alone():
    runtests("--version")  # installs if this venv's stamp is not this run's
    before = installed_files()
    assert before, "the package is not installed in this virtualenv"

    result = runtests("--version")

    assert installed_files() == before
    assert result.stdout.startswith("pytest")
