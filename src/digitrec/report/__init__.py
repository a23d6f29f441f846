"""A run shown as pictures: PNG figures (matplotlib, no display needed) and one
self-contained HTML page.
"""
