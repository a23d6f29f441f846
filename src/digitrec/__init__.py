"""digitrec: recognise handwritten digits with convolutional networks."""

__version__ = "0.1.0"
