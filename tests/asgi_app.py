"""The ASGI application of the test server process: the example project's, on the test
settings (tests/asgi_settings.py)."""
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.asgi_settings")

from example_project.asgi import application  # noqa: E402, F401
