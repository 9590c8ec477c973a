"""Hand-made per-frame features of keypoints: the feature bank the decision layer reads.

``feature_bank`` is the product's; ``keypoint_features`` is the SimBA-style set the baseline forest
in ``benchmarks/`` uses (kept unchanged so that its numbers stay comparable). What looked-at video
frames show around each animal is :mod:`dlc_lookagain.features.appearance`.
"""

from dlc_lookagain.features.bank import BANK_VERSION, feature_bank, keypoint_features

__all__ = ["feature_bank", "keypoint_features", "BANK_VERSION"]
