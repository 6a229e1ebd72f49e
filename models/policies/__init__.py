"""Policies: as score functions over the catalogue (scores), as action distributions over logged rounds (bandit), and stochastic policies from scores (stochastic)."""
