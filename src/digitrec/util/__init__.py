"""The shared bottom room: constants, crash-safe files, the machine (cores, cache, device).

Every other room may import from here; this room imports nothing of digitrec's but `errors`.
"""

# MNIST's picture side in pixels: every model reads SIDE×SIDE digits, every reader produces them.
SIDE = 28
# The label, and the model output, of "not a digit" (synthetic non-digits in training; 0-9 are the digits)
NOT_A_DIGIT = 10
