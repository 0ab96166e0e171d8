"""Training: configurations, pre-training data and augmentation, the shared loop, tasks.

Imported only by ``perf2score train`` (never by conversion)."""
