"""Text: sentence embeddings from a transformer encoder (encoder), keywords by maximal marginal relevance (keywords), topics (topics)."""
