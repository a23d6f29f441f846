"""Pictures made from real MNIST digits the ways people make them, for the tests and the
benchmarks. Nothing else in digitrec imports this room.
"""
