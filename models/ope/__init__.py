"""Off-policy evaluation: estimators (DM, IPS, SNIPS, DR, SNDR, Switch-DR, DR-OS), data-driven tuning of their λ, paired comparisons of policies, reward models."""
