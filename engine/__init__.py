"""Choreo engine: bpy-free music analysis, motion data, generation, validation and retargeting."""

__version__ = "0.1.0"
