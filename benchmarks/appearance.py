"""The accuracy benchmark's appearance features are the product's: :mod:`dlc_lookagain.features.appearance`.

Kept as a module name so that ``benchmarks/accuracy.py`` (forest + uniform appearance rows) reads
the same crops and descriptors the decision layer's vision group does.
"""

from dlc_lookagain.features.appearance import (  # noqa: F401
    FEATURE_VERSION,
    AppearanceConfig,
    crop_geometry,
    extract,
    feature_names,
    frame_features,
    propagate,
    rotated_crop,
    uniform_frames,
)
