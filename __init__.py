"""Recause: what does your recommender cause, and what would happen if you changed it?

One import root over the project's top-level folders (``pyproject.toml`` maps ``recause`` to the
repository root, so ``recause.models`` is ``models/``):

- :mod:`recause.flows` — the only layer that imports Prefect: the CLI, the configuration, the
  pipeline flow and its thin stage tasks, artifact writers;
- :mod:`recause.tasks` — pure stage logic and each stage's configuration (no Prefect, no MLflow);
- :mod:`recause.models` — maths only: encoders, estimators, policies, the synthetic world;
- :mod:`recause.validations` — Great Expectations suites and the quarantine;
- :mod:`recause.mlflow_config` — tracking locations, experiments and runs.

Importing this package imports nothing else.
"""

__version__ = "0.1.0"
