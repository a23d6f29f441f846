"""The HTTP API and its drawing page: a thin FastAPI app, its routes, request bodies,
upload limits and the static page.
"""
