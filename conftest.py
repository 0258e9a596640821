"""The docs' code blocks are tests too (tests/doc_blocks.py); they run after the suite."""
from tests.doc_blocks import _doc_pages, doc_pages, sybil  # noqa: F401 - fixtures of the pages

pytest_collect_file = sybil.pytest()


def pytest_collection_modifyitems(items):
    """The pages last: they hold the database open for their own transactions."""
    items.sort(key=lambda item: item.path.suffix == ".md")
