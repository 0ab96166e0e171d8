"""Training targets from ASAP and (n)ASAP, and the cache that stores them."""

from perf2score.data.archives import resolve_dataset
from perf2score.data.cache import PreparedPerformance, load_index, load_prepared

__all__ = ["PreparedPerformance", "load_index", "load_prepared", "resolve_dataset"]
