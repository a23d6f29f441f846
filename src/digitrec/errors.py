"""The one exception type that means "the user gave us something wrong".

The CLI turns it into a one-line message and exit code 2; everything else is a
bug and keeps its traceback.
"""


class DigitrecError(Exception):
    """A user-facing error: the message names the file or field and the problem."""
