"""The browser tests' fixtures (tests/support/web.py): a live server of the shipped model and Debian's chromium."""

from web import browser, url  # noqa: F401 - fixtures, for the modules of this folder that use them
