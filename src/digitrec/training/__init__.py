"""Model → trained model file: settings and recipes, the loop, the run folder, ensembles,
distributed training and metrics; `native/` holds the C kernels and the optimiser steps.
"""
