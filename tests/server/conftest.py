"""Fixtures of the web page tests (test_static_page.py, test_page_mode.py)."""

from browser import browser  # noqa: F401 - the real browser, a module-scoped fixture
