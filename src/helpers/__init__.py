"""Helpers for the deepfake-lessons notebooks: one module per concept.

config (paths, profiles, seeds) -> data (find, scan, split, feed images) -> backbones -> model ->
train -> saved model folder -> predict / evaluate / gradcam / demo. See README.md for the map.
"""
__version__ = "0.1.0"
