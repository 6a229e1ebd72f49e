"""The synthetic world: a structural causal model with exact ground truth (scm) and the text it generates (text)."""
