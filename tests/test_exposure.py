"""The exposure columns read one way: shown rows, shown pairs, inverse-propensity weights."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recause.tasks.data.exposure import exposed_rows, inverse_propensity, shown_pairs


def _slate_log() -> pd.DataFrame:
    # user 0 saw two slots (π 0.5, 0.25), user 1 one slot (π 0.1); one organic row (not shown)
    return pd.DataFrame({"user": [0, 0, 1, 1], "item": [3, 4, 3, 5], "exposed": [True, True, True, None],
                         "position": [1, 2, 1, None], "propensity": [0.5, 0.25, 0.1, None], "positive": [1, 0, 1, 1]})


def test_slate_weights_are_one_over_slots_times_propensity() -> None:
    log = _slate_log()
    np.testing.assert_array_equal(exposed_rows(log), [True, True, True, False])
    np.testing.assert_allclose(inverse_propensity(log, n_users=2), [1 / (2 * 0.5), 1 / (2 * 0.25), 1 / 0.1, 0.0])


def test_pair_logs_weigh_one_over_propensity() -> None:
    log = _slate_log().drop(columns="position")
    np.testing.assert_allclose(inverse_propensity(log, n_users=2), [2.0, 4.0, 10.0, 0.0])


def test_a_shown_row_without_its_propensity_is_an_error() -> None:
    log = _slate_log()
    log.loc[1, "propensity"] = None
    with pytest.raises(ValueError, match="logged propensity"):
        inverse_propensity(log, n_users=2)


def test_shown_pairs_of_several_parts() -> None:
    log = _slate_log()
    pairs = shown_pairs([log, log.iloc[:1]])
    assert list(zip(pairs["user"], pairs["item"])) == [(0, 3), (0, 4), (1, 3), (0, 3)]
