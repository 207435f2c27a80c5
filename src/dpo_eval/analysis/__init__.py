"""Statistical analyses of the evaluation (model engine, measurement invariance)."""
