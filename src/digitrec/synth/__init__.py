"""Every made-up picture digitrec draws, in one room: non-digits (nondigits), digits restyled in the
world's writing habits (styles), the cached banks of both that training mixes in (banks), number lines
(lines), numbers and test variants for tests and benchmarks (numbers, variants).

It sits between `training` (and bench/) which use it, and `pictures` and `data` which it uses: a
generator draws with the same `preprocess` and line-reader input that reading uses.
"""
