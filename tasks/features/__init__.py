"""The text-feature stage: what a language model makes of items and users.

``config`` (settings) · ``build`` (documents, embeddings, keywords, topics, cold start; pure, the
embedding function injected) · ``encoder`` (loading an HF encoder from a local path or hub id,
its ONNX export) · ``cache`` (the on-disk embedding cache). Loading and caching are explicit I/O
at the edge: the stage task builds them and hands :func:`~recause.tasks.features.build.text_features`
an ``embed`` function.
"""
