"""Maths only, no I/O: graph encoders and the causal recommender, off-policy estimators, policies, the synthetic world, text encoding, metrics, the two-sample critic."""
