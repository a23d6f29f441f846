"""Native training speed-ups: fused C kernels built on first use, optimiser steps over one flat
parameter tensor. The models, their files and their exports never depend on them.
"""
