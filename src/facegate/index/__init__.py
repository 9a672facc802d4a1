"""Vector search over a collection's trained embeddings.

:class:`VectorIndex` is the interface identify uses; :class:`ExactIndex` answers it exactly with
numpy (fast enough for hundreds of thousands of rows per collection); an approximate index can
replace it behind the same interface. :class:`IndexCache` keeps built indexes per collection,
keyed by the snapshot version so a retrain or a deletion is never served stale.
"""

from facegate.index.base import Hit, VectorIndex
from facegate.index.cache import IndexCache
from facegate.index.exact import ExactIndex

__all__ = ["ExactIndex", "Hit", "IndexCache", "VectorIndex"]
