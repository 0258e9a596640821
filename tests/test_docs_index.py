"""docs/index.md is the way into the documentation: every page is listed in it, once."""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_page_is_listed_once_in_the_index():
    links = Counter(re.findall(r"\]\(([\w-]+\.md)(?:#[\w-]+)?\)",
                               (DOCS / "index.md").read_text()))
    pages = {page.name for page in DOCS.glob("*.md")} - {"index.md"}
    assert sorted(pages - set(links)) == [], "pages missing from docs/index.md"
    assert sorted(set(links) - pages) == [], "links to pages that do not exist"
    assert [page for page, count in links.items() if count > 1] == []
