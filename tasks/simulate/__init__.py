"""The simulate stage: a user simulator fitted on the training split, its fidelity measured, and the what-ifs it answers."""
