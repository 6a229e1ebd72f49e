"""The user simulator: a response generator for whole slates, its critic and training recipe, a user generator and a
logging-policy imitation (conditional GANs; maths only, tensors in and out)."""
