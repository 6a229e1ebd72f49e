"""The orchestration layer, the only importer of Prefect: the CLI, the configuration and presets, the pipeline flow and its stage tasks, artifact writers, process settings and provenance."""
