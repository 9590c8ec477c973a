"""The LookAgain model: one module per part, in the order data flows through them.

- :mod:`~dlc_lookagain.model.pose_tokens`: any skeleton -> egocentric keypoint tokens.
- :mod:`~dlc_lookagain.model.motion_encoder`: tokens -> per-frame motion features z.
- :mod:`~dlc_lookagain.model.quantizer`: z -> residual vector-quantized motion codes.
- :mod:`~dlc_lookagain.model.gate`: which frames are worth looking at.
- :mod:`~dlc_lookagain.model.vision`: the frozen image encoder and its backbones.
- :mod:`~dlc_lookagain.model.crops`: egocentric animal crops and the context view it sees.
- :mod:`~dlc_lookagain.model.visual_features`: one decoding pass -> encoder features of chosen frames.
- :mod:`~dlc_lookagain.model.feature_cache`: those features kept on disk, never computed twice.
- :mod:`~dlc_lookagain.model.look`: chosen frames -> vision features of a recording.
- :mod:`~dlc_lookagain.model.fusion`: vision of looked-at frames informs every frame.
- :mod:`~dlc_lookagain.model.heads`: behavior probabilities, thresholds, bout filtering.
- :mod:`~dlc_lookagain.model.motifs`: unsupervised segmentation into motifs.
- :mod:`~dlc_lookagain.model.lookagain`: the assembled model, saving and loading.
- :mod:`~dlc_lookagain.model.windows`, :mod:`~dlc_lookagain.model.inference`,
  :mod:`~dlc_lookagain.model.training`: batching, running and training it.

Importing this package does not import torch; its modules do.
"""
