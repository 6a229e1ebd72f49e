"""The train stage: the causal GNN and its reference models.

``config`` (settings, the regime table, :func:`~recause.tasks.train.config.resolve`) · ``plan``
(identification, what each model optimises) · ``data`` (split → tensors, validation metrics) ·
``fit`` (build, Lightning fit, the fitted models) · ``callbacks`` · ``report`` (truth metrics,
causal effect map).
"""
