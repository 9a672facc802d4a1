"""Training and evaluation side of spoof detection (``facegate spoof train``).

The run-time half lives in :mod:`facegate.engine.spoof`; the features and the model format both
halves share are in :mod:`facegate.engine.spoof.features` and :mod:`facegate.engine.spoof.model`.
"""
