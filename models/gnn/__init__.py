"""The causal GNN: graph encoders (encoders), pair heads (heads), the Lightning recipe (module), losses, training batches and neighbour sampling."""
