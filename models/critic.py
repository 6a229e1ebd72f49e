"""A contrastive two-sample critic: how different are two worlds, beyond their means?

A small network is trained to tell samples of one world (e.g. what the control policy recommends
to a user and what the model predicts they do) from samples of another (an intervention). Its AUC
on held-out samples is the classifier two-sample test statistic of Lopez-Paz & Oquab ("Revisiting
Classifier Two-Sample Tests", ICLR 2017): 0.5 = indistinguishable, 1.0 = always told apart. Two
policies with the same mean click rate can still differ in *who* gets *what*; the critic sees that.
"""

from __future__ import annotations

import numpy as np

from recause.models.metrics import auc


def two_sample_auc(
    control: np.ndarray,
    treatment: np.ndarray,
    *,
    hidden: int = 64,
    epochs: int = 200,
    lr: float = 1e-2,
    weight_decay: float = 1e-4,
    test_fraction: float = 0.3,
    seed: int = 0,
) -> float:
    """Held-out AUC of an MLP separating ``treatment`` rows from ``control`` rows.

    Parameters
    ----------
    control, treatment : (n0, d), (n1, d) feature rows of the two samples.
    hidden : width of the single hidden layer (ReLU).
    epochs : full-batch Adam steps on the training part.
    test_fraction : share of each sample held out for the AUC.

    Returns
    -------
    float in [0, 1]; 0.5 means the critic could not tell the samples apart.
    """
    import torch

    if control.ndim != 2 or treatment.ndim != 2 or control.shape[1] != treatment.shape[1]:
        raise ValueError(f"control and treatment must be 2-D with the same width, got {control.shape} and {treatment.shape}")
    if min(len(control), len(treatment)) < 10:
        raise ValueError(f"need at least 10 rows per sample, got {len(control)} and {len(treatment)}")
    x = np.concatenate([control, treatment]).astype(np.float32)
    y = np.concatenate([np.zeros(len(control)), np.ones(len(treatment))]).astype(np.float32)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(x), dtype=bool)
    for label in (0.0, 1.0):
        rows = np.flatnonzero(y == label)
        test[rng.choice(rows, size=max(1, int(round(test_fraction * len(rows)))), replace=False)] = True
    mean, std = x[~test].mean(axis=0), x[~test].std(axis=0) + 1e-6
    x = (x - mean) / std

    generator = torch.Generator().manual_seed(seed)
    network = torch.nn.Sequential(torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))
    with torch.no_grad():
        for layer in (network[0], network[2]):
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * (1.0 / np.sqrt(layer.weight.shape[1])))
            layer.bias.zero_()
    optimiser = torch.optim.Adam(network.parameters(), lr=lr, weight_decay=weight_decay)
    train_x, train_y = torch.from_numpy(x[~test]), torch.from_numpy(y[~test])
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for _ in range(epochs):
        optimiser.zero_grad()
        loss = loss_fn(network(train_x).squeeze(1), train_y)
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        scores = network(torch.from_numpy(x[test])).squeeze(1).numpy()
    return auc(scores.astype(np.float64), y[test].astype(np.int64))
