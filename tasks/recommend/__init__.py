"""The ``recommend`` stage's logic: top-K lists per user by a chosen strategy, each item with a reason."""
