"""The contrast stage: interventions (what-ifs) against the control on the same logged rounds.

``config`` (settings) · ``interventions`` (the what-if kinds and their build hooks) · ``sources``
(what interventions are built from) · ``estimation`` (rounds, reward model, off-policy estimates
and paired lifts) · ``beyond`` (beyond-accuracy metrics, two-sample critic) · ``result`` (table,
metrics, verdicts) · ``stage`` (the entry, :func:`~recause.tasks.contrast.stage.run_contrast`).
"""
