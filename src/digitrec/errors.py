"""The one exception type that means "the user gave us something wrong".

The error knows the field it is about (a setting, a request field), not how the
user spelled it: the CLI renders `field="threshold"` as `--threshold: …`, the
HTTP API as `{"field": "threshold", …}`. Errors about a file name the file in
their message instead. Anything that is not a DigitrecError is a bug and keeps
its traceback.
"""

from __future__ import annotations


class DigitrecError(Exception):
    """A user-facing error: `message` says what is wrong; `field` names the setting it is about."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        """`field: message`, the plain form for logs and other callers of the library."""
        return f"{self.field}: {self.message}" if self.field else self.message
