"""The docs' code blocks are tests too (tests/doc_blocks.py); they run after the suite and
before the browser tests."""
from tests.doc_blocks import doc_pages, sybil  # noqa: F401 - the pages' fixture

pytest_collect_file = sybil.pytest()


def pytest_collection_modifyitems(items):
    """The pages after the suite, as they hold a transaction open from page to page; the
    browser tests after the pages, as Playwright leaves an event loop running in the main
    thread, in which Django refuses database access."""
    items.sort(key=lambda item: 2 if "browser" in item.path.parts else item.path.suffix == ".md")
