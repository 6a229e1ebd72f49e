"""MLflow tracking: the store's location, experiment naming, the parent run and one nested run per stage."""
