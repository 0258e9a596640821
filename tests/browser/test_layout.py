"""The demo's pages fit a phone (390 px) and a laptop (1280 px): nothing scrolls sideways,
and at 1280 px no row of the devices table wraps. The screenshots are the README's and
docs/images' pictures: JWT_SESSIONS_UPDATE_IMAGES=1 writes them there (else artifacts/).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

if os.environ.get("JWT_SESSIONS_BROWSER") != "1":
    pytest.skip("browser test: set JWT_SESSIONS_BROWSER=1", allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402

from tests.browser.pages import log_in  # noqa: E402
from tests.conftest import UA_IPHONE  # noqa: E402

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
WIDTHS = (390, 1280)
PAGES = ("/login/", "/protected/", "/devices/")
OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"
# The most lines any text cell of the devices table takes (its text's line boxes).
CELL_LINES = """() => Math.max(...[
    ...document.querySelectorAll('#devices tbody td:not(:last-child)')].map((cell) => {
  const range = document.createRange();
  range.selectNodeContents(cell);
  return new Set([...range.getClientRects()].map((rect) => Math.round(rect.top))).size;
}))"""


def image_folder(artifacts: Path) -> Path:
    return IMAGES if os.environ.get("JWT_SESSIONS_UPDATE_IMAGES") == "1" else artifacts


@pytest.fixture(scope="module")
def signed_in_twice(site, browser):
    """alice on a phone too, so that the devices page lists two sessions."""
    phone = browser.new_context(base_url=site, user_agent=UA_IPHONE).new_page()
    log_in(phone, "alice")
    return phone


@pytest.mark.parametrize("width", WIDTHS)
def test_the_pages_fit_the_width(site, browser, signed_in_twice, artifacts, width):
    page = browser.new_context(base_url=site,
                               viewport={"width": width, "height": 800}).new_page()
    log_in(page, "alice")
    for path in PAGES:
        page.goto(path)
        page.wait_for_load_state("networkidle")
        assert page.evaluate(OVERFLOW) <= 0, f"{path} scrolls sideways at {width} px"
    expect(page.locator("#devices tbody tr").nth(1)).to_be_visible()  # two sessions or more
    expect(page.locator("#session-status")).to_have_attribute("data-state", "live")
    page.screenshot(path=str(image_folder(artifacts) / f"devices-{width}.png"), full_page=True)
    if width >= 1280:
        assert page.evaluate(CELL_LINES) == 1, "a row of the devices table wraps"
