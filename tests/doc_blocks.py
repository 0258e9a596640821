"""Runs the code blocks of README.md and docs/*.md with Sybil: a page that cannot be pasted
fails the suite. The rules a page follows are in docs/index.md ("Code blocks").

- `python` blocks run in order, in the page's scratch folder, in one namespace per page.
  It starts with what a fresh `django-admin startproject` writes into settings.py and
  urls.py (so `INSTALLED_APPS += [...]` and `urlpatterns += [...]` run as written), with
  the test database open; each page's rows are rolled back when the page is done.
- `sh` / `bash` blocks run with `bash -euo pipefail` in a scratch folder of their page, beside
  a `jwt_sessions` folder that is this checkout (the docs install from `./jwt_sessions`), with
  this suite's virtualenv first on PATH. `http://127.0.0.1:8000` means the example project:
  the block talks to one the suite starts on a free port. `pip install ./jwt_sessions[...]`
  builds this project (from a copy of the checkout) and installs it without dependencies
  (they are this suite's already) into the scratch folder, and fails on an extra the
  project does not declare; a package named from the index is resolved, not installed.
- Any other language (js, html, http, json, text) is shown, not run; `<!-- skip: next -->`
  before a block keeps it from running (`<!-- skip: start if(not installed("allauth"),
  reason="...") -->` only where an optional integration is missing),
  `<!-- invisible-code-block: python -->` runs setup a reader does not need to see.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import django
import pytest
from django.db import connection, transaction
from django.test.utils import setup_databases, teardown_databases
from sybil import Example, Sybil
from sybil.evaluators.doctest import DocTestEvaluator
from sybil.evaluators.python import PythonEvaluator
from sybil.parsers.abstract.doctest import DocTestStringParser
from sybil.parsers.markdown import (
    ClearNamespaceParser,
    CodeBlockParser,
    PythonCodeBlockParser,
    SkipParser,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_ORIGIN = "http://127.0.0.1:8000"
SHELL_TIMEOUT = 300
PIP_SHIM = """
# The docs' `pip install ...`: this project is built and installed (without dependencies)
# into the page's scratch folder, and an extra it does not declare fails; a package of the
# index is resolved, not installed.
import os
import re
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10: pip's own copy of tomli
    from pip._vendor import tomli as tomllib

real = os.environ["DOCS_REAL_PIP"]
if sys.argv[1:2] != ["install"]:
    os.execv(real, [real, *sys.argv[1:]])
local, named = [], []
for arg in sys.argv[2:]:
    if arg in ("-e", "-q", "-U", "--upgrade"):
        continue
    (local if arg.startswith(("./", "/")) else named).append(arg)
for arg in local:
    path, extras = re.fullmatch(r"(.+?)(?:\\[(.*)\\])?", arg).groups()
    project = tomllib.loads((Path(path) / "pyproject.toml").read_text())["project"]
    unknown = set(filter(None, (extras or "").split(","))) - set(project["optional-dependencies"])
    if unknown:
        sys.exit(f"{path} does not provide the extra(s) {sorted(unknown)}")
steps = [["--no-deps", "--no-warn-script-location", "--target", ".docs-site", *local]] * bool(local)
steps += [["--dry-run", "--no-deps", "--ignore-installed", *named]] * bool(named)
for step in steps:
    subprocess.run([real, "install", "-q", *step], check=True)
"""


def startproject_namespace() -> dict:
    """The names of a fresh startproject's settings.py and urls.py ("mysite")."""
    template = Path(django.__file__).parent / "conf" / "project_template" / "project_name"
    namespace: dict = {"__name__": "mysite.settings",
                       "__file__": str(ROOT / "mysite" / "settings.py")}
    for name in ("settings.py-tpl", "urls.py-tpl"):
        source = (template / name).read_text()
        for key, value in (("project_name", "mysite"), ("secret_key", "docs-" + "k" * 50),
                           ("django_version", django.get_version()), ("docs_version", "dev")):
            source = source.replace("{{ " + key + " }}", value)
        exec(compile(source, name, "exec"), namespace)  # noqa: S102 - Django's own template
    return namespace


class Pages:
    """What the pages share in one run: a transaction per page, scratch folders, and the
    example project (started the first time a block needs it)."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._page: str | None = None
        self._atomic: transaction.Atomic | None = None
        self._scratch = Path(tempfile.mkdtemp(prefix="jwt-sessions-docs-"))
        self._site: str | None = None

    def enter(self, page: str) -> None:
        """Roll back the previous page's rows and open a transaction for `page`."""
        if page == self._page:
            return
        self._leave_page()
        atomic = transaction.atomic()
        atomic.__enter__()
        self._page, self._atomic = page, atomic

    def _leave_page(self) -> None:
        if self._atomic is not None:
            transaction.set_rollback(True)
            self._atomic.__exit__(None, None, None)
            self._atomic = None

    def folder(self, page: str) -> Path:
        """The page's scratch folder, with the checkout beside it as ./jwt_sessions."""
        folder = self._scratch / Path(page).stem
        if not folder.exists():
            folder.mkdir()
            (folder / "jwt_sessions").symlink_to(self._checkout())
        return folder

    def _checkout(self) -> Path:
        """A copy of the checkout's files (tracked or new, not ignored): a build writes into
        the tree it builds, and must not write into this one."""
        copy = self._scratch / ".checkout"
        if not copy.exists():
            listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"],
                                    cwd=ROOT, capture_output=True, check=True).stdout
            for name in filter(None, listed.decode().split("\0")):
                source = ROOT / name
                if source.is_file():
                    (copy / name).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, copy / name)
        return copy

    def tools(self) -> Path:
        tools = self._scratch / ".tools"
        if not tools.exists():
            tools.mkdir()
            shim = tools / "pip"
            shim.write_text(f"#!{sys.executable}" + PIP_SHIM)
            shim.chmod(0o755)
        return tools

    def example_origin(self) -> str:
        if self._site is None:
            from tests.example_site import example_site

            self._site = self._stack.enter_context(example_site(self._scratch))
        return self._site

    def close(self) -> None:
        self._leave_page()
        self._stack.close()
        shutil.rmtree(self._scratch, ignore_errors=True)


@pytest.fixture(scope="session")
def doc_pages(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), ExitStack() as stack:
        # pytest-django creates the test database only for tests it knows to need one: a
        # run of the pages alone creates it here.
        if connection.settings_dict["NAME"] != connection.creation._get_test_db_name():
            names = setup_databases(verbosity=0, interactive=False, aliases={"default"})
            stack.callback(teardown_databases, names, verbosity=0)
        pages = Pages()
        stack.callback(pages.close)
        yield pages


class OnPage:
    """Runs an evaluator inside its page: the page's transaction is open, and the working
    directory is the page's scratch folder (a block that writes a file writes it there).

    Sybil also puts every fixture behind `doc_pages` into the page's namespace before each
    block (`request` among them); a name the page itself defined gets its value back."""

    def __init__(self, evaluator: Callable[[Example], str | None]) -> None:
        self.evaluator = evaluator

    def __call__(self, example: Example) -> str | None:
        namespace = example.namespace
        page_names = namespace.get("__page_names__", {})
        for name, value in page_names.items():
            if name in namespace and namespace[name] is not value:
                namespace[name] = value
        pages: Pages = namespace["doc_pages"]
        pages.enter(str(example.path))
        previous = os.getcwd()
        os.chdir(pages.folder(str(example.path)))
        try:
            return self.evaluator(example)
        finally:
            os.chdir(previous)
            namespace["__page_names__"] = {name: value for name, value in namespace.items()
                                           if name != "__page_names__"}


class PagePythonParser(PythonCodeBlockParser):
    """`python` blocks and doctests, each run on its page."""

    def __init__(self) -> None:
        super().__init__()
        self.codeblock_parser = CodeBlockParser("python", OnPage(PythonEvaluator()))
        self.doctest_parser = DocTestStringParser(OnPage(DocTestEvaluator()))


@OnPage
def run_shell(example: Example) -> str | None:
    """A sh/bash block, as a reader would paste it (see the module docstring)."""
    pages: Pages = example.namespace["doc_pages"]
    script = example.parsed
    if EXAMPLE_ORIGIN in script:
        script = script.replace(EXAMPLE_ORIGIN, pages.example_origin())
    venv_bin = Path(sys.executable).parent
    env = {**os.environ, "DOCS_REAL_PIP": str(venv_bin / "pip"),
           "PATH": os.pathsep.join([str(pages.tools()), str(venv_bin), os.environ["PATH"]]),
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], env=env, text=True,
                            capture_output=True, timeout=SHELL_TIMEOUT, check=False)
    if result.returncode:
        return (f"exit {result.returncode}\n--- stdout\n{result.stdout[-3000:]}"
                f"\n--- stderr\n{result.stderr[-3000:]}")
    return None


def installed(module: str) -> bool:
    """For a page's skip condition: is this optional integration importable here?"""
    import importlib.util

    return importlib.util.find_spec(module) is not None


def setup_page(namespace: dict) -> None:
    namespace.update(startproject_namespace(), installed=installed)


sybil = Sybil(
    parsers=[
        PagePythonParser(),
        CodeBlockParser(language="sh", evaluator=run_shell),
        CodeBlockParser(language="bash", evaluator=run_shell),
        SkipParser(),
        ClearNamespaceParser(),
    ],
    path=str(ROOT),
    patterns=["README.md", "docs/*.md", "CHANGELOG.md"],
    setup=setup_page,
    fixtures=["doc_pages"],
)


def page_as_module(name: str, namespace: dict) -> None:
    """Make what a page defined so far importable as `name` (the file the block shows), so
    that a later block can import it as the reader's project would."""
    import types

    package, _, _ = name.rpartition(".")
    if package and package not in sys.modules:
        sys.modules[package] = types.ModuleType(package)
        sys.modules[package].__path__ = []
    module = types.ModuleType(name)
    module.__dict__.update({key: value for key, value in namespace.items()
                            if not key.startswith("__")})
    sys.modules[name] = module
