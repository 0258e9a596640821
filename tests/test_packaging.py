"""The release's version is one number: the package's, which the build reads and the
changelog's newest entry names."""
from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

import jwt_sessions

ROOT = Path(__file__).resolve().parent.parent


def test_the_installed_metadata_carries_the_packages_version():
    assert version("jwt_sessions") == jwt_sessions.__version__


def test_the_changelogs_newest_entry_is_this_version():
    newest = re.search(r"^## (\S+)", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert newest and newest.group(1) == jwt_sessions.__version__
