"""django-allauth is an optional extra: without it, jwt_sessions works, `jwt_sessions.allauth`
is still found, and importing it says what to install. Proved in a fresh interpreter that
cannot see allauth, so this runs whether or not the extra is installed."""
from __future__ import annotations

import subprocess
import sys
import textwrap

WITHOUT_ALLAUTH = textwrap.dedent("""
    import importlib.util, sys

    sys.modules["allauth"] = None  # as if not installed: find_spec None, import refused
    import os
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django
    django.setup()
    from django.conf import settings
    assert settings.ALLAUTH is False, "the test settings must leave allauth out"
    import jwt_sessions.permissions, jwt_sessions.api, jwt_sessions.urls  # noqa: E401
    assert importlib.util.find_spec("jwt_sessions.allauth") is not None
    try:
        import jwt_sessions.allauth  # noqa: F401
    except ImportError as exc:
        print("refused:", exc)
    else:
        raise SystemExit("jwt_sessions.allauth imported without allauth")
""")


def test_without_allauth_the_module_is_found_and_refuses_with_the_extra_to_install():
    result = subprocess.run([sys.executable, "-c", WITHOUT_ALLAUTH], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "pip install 'jwt_sessions[allauth]'" in result.stdout
