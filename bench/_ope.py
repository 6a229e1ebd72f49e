"""The off-policy estimators the OPE benchmarks report, defined once.

- :data:`PLAIN`: the five estimators without a hyper-parameter — DM, IPW, SNIPW, DR, SNDR (also
  the names ``bench/contrast_synthetic.py`` asks the contrast stage for);
- :func:`estimators`: those five plus Switch-DR and DR-OS with λ tuned on each policy's data over
  the classes' default grids (``bench/obd_ope.py``, ``bench/ope_synthetic.py``);
- :func:`obp_matched_estimators`: the ten ``bench/vs_obp.py`` runs beside Open Bandit Pipeline
  (fixed λ, and the tuned ones on explicit grids with obp's tuning methods).

Imports of ``recause`` happen inside the functions: ``vs_obp.py`` also runs in obp's venv, where
only obp is needed.
"""

from __future__ import annotations

PLAIN: tuple[str, ...] = ("dm", "ipw", "snipw", "dr", "sndr")
"""Estimators without a hyper-parameter, by their labels (the contrast stage's names too)."""

# vs_obp.py: fixed λ of IPW clipping, Switch-DR and DR-OS, and the grids of the tuned ones (obp's settings)
LAMBDA_CLIP, LAMBDA_SWITCH, LAMBDA_OS = 20.0, 20.0, 100.0
GRID_SWITCH = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, float("inf"))
GRID_OS = (1.0, 10.0, 100.0, 1000.0, 10000.0, float("inf"))


def plain_estimators() -> dict:
    """label -> estimator for :data:`PLAIN` (fresh instances)."""
    from recause.models.ope.estimators import (
        DirectMethod,
        DoublyRobust,
        InverseProbabilityWeighting,
        SelfNormalizedDoublyRobust,
        SelfNormalizedInverseProbabilityWeighting,
    )

    made = {
        "dm": DirectMethod(),
        "ipw": InverseProbabilityWeighting(),
        "snipw": SelfNormalizedInverseProbabilityWeighting(),
        "dr": DoublyRobust(),
        "sndr": SelfNormalizedDoublyRobust(),
    }
    assert tuple(made) == PLAIN
    return made


def estimators() -> dict:
    """label -> estimator: :data:`PLAIN` and the tuned Switch-DR / DR-OS (class-default λ grids)."""
    from recause.models.ope.tuning import DoublyRobustWithShrinkageTuning, SwitchDoublyRobustTuning

    return plain_estimators() | {
        "switch-dr-tuned": SwitchDoublyRobustTuning(),
        "dr-os-tuned": DoublyRobustWithShrinkageTuning(),
    }


def obp_matched_estimators() -> dict:
    """label -> estimator: the ten estimators ``vs_obp.py`` compares with obp's, labelled as obp names them."""
    from recause.models.ope.estimators import DoublyRobustWithShrinkage, InverseProbabilityWeighting, SwitchDoublyRobust
    from recause.models.ope.tuning import DoublyRobustWithShrinkageTuning, SwitchDoublyRobustTuning

    return plain_estimators() | {
        "ipw-clip": InverseProbabilityWeighting(lambda_=LAMBDA_CLIP),
        "switch-dr": SwitchDoublyRobust(lambda_=LAMBDA_SWITCH),
        "dr-os": DoublyRobustWithShrinkage(lambda_=LAMBDA_OS),
        "switch-dr-slope": SwitchDoublyRobustTuning(lambdas=GRID_SWITCH, tuning_method="slope"),
        "dr-os-mse": DoublyRobustWithShrinkageTuning(lambdas=GRID_OS, tuning_method="mse"),
    }
