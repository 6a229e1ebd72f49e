"""Pure stage logic and each stage's configuration: no Prefect, no MLflow, no hidden file I/O (data and configs in, data out)."""
