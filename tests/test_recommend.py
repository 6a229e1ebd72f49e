"""The recommend stage's lists: what a user has is never recommended, exploration slots are labelled,
strategies fall back with a reason, and the chosen intervention is the best one whose CI excludes zero."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from recause.models.policies.scores import FunctionPolicy
from recause.tasks.evaluate import PolicySet
from recause.tasks.recommend.config import RecommendConfig
from recause.tasks.recommend.lists import ItemNotes, already_has, best_intervention, candidates, recommend, top_k

# 2 users × 5 items; user 0 already has item 4 (its best), user 1 has items 0 and 1
SCORES = np.array([[0.1, 0.5, 0.3, 0.2, 0.9],
                   [0.8, 0.7, 0.1, 0.4, 0.3]])
HAS = sparse.csr_matrix(np.array([[0, 0, 0, 0, 1], [1, 1, 0, 0, 0]], dtype=bool))


def scores(users: np.ndarray) -> np.ndarray:
    return SCORES[users]


def kept(size: int = 5, uplift=None):
    return candidates(scores, np.arange(2), HAS, size, uplift)


def test_candidates_are_the_best_items_a_user_does_not_have_best_first() -> None:
    c = kept(3, uplift=lambda users: SCORES[users] / 10)
    assert c.items.tolist() == [[1, 2, 3], [3, 4, 2]] and c.size == 3
    assert np.allclose(c.scores, [[0.5, 0.3, 0.2], [0.4, 0.3, 0.1]]) and c.scores.dtype == np.float32
    assert np.allclose(c.uplift, c.scores / 10)
    c = kept(5)  # user 1 has 3 items left: the rest of the row is empty
    assert c.items[1].tolist() == [3, 4, 2, -1, -1] and np.isnan(c.scores[1, 3:]).all() and c.uplift is None
    blocked = candidates(scores, np.arange(2), HAS, 5, block=1)
    assert (blocked.items == c.items).all()  # blocks of users change nothing
    ties = candidates(lambda users: np.zeros((len(users), 4)), np.arange(1), sparse.csr_matrix((1, 4), dtype=bool), 2)
    assert ties.items.tolist() == [[0, 1]]  # ties go to the lower index
    nan = candidates(lambda users: np.array([[np.nan, 1.0, np.inf]]), np.arange(1), sparse.csr_matrix((1, 3), dtype=bool), 3)
    assert nan.items.tolist() == [[1, -1, -1]]  # non-finite scores are never candidates


def test_top_k_skips_what_users_have_and_labels_exploration() -> None:
    items, values, taus, explore = top_k(kept(), np.array([0, 1]), HAS, k=3, n_explore=0, seed=0)
    assert items.tolist() == [[1, 2, 3], [3, 4, 2]]  # by score, without items 4 (user 0) and 0, 1 (user 1)
    assert values[0].tolist() == pytest.approx([0.5, 0.3, 0.2]) and not explore.any() and np.isnan(taus).all()
    items, values, _, explore = top_k(kept(), np.array([0, 1]), HAS, k=3, n_explore=1, seed=0)
    assert items[:, :2].tolist() == [[1, 2], [3, 4]] and explore.tolist() == [[False, False, True]] * 2
    assert items[0, 2] in (0, 3) and items[1, 2] == 2  # the one slot left goes to an item not yet listed, not had
    assert values[0, 2] == pytest.approx(SCORES[0, items[0, 2]])  # an explored candidate keeps its score
    again, _, _, _ = top_k(kept(), np.array([0, 1]), HAS, k=3, n_explore=1, seed=0)
    assert (again == items).all()  # seeded
    alone, _, _, _ = top_k(kept(), np.array([1]), HAS, k=3, n_explore=1, seed=0)
    assert (alone[0] == items[1]).all()  # one user's list does not depend on who else is asked


def test_exploration_reaches_beyond_the_candidates_without_a_score() -> None:
    few = kept(1)  # one candidate per user: the other slots explore the whole catalogue
    items, values, _, explore = top_k(few, np.array([0]), HAS, k=4, n_explore=3, seed=0)
    assert items[0, 0] == 1 and explore[0].tolist() == [False, True, True, True]
    assert sorted(items[0, 1:].tolist()) == [0, 2, 3]  # everything user 0 does not have, but its candidate
    assert values[0, 0] == pytest.approx(0.5) and np.isnan(values[0, 1:]).all()  # not among the candidates: not scored
    with pytest.raises(ValueError, match=r"only the best 1 are kept \(recommend.candidates\)"):
        top_k(few, np.array([0]), HAS, k=2, n_explore=0, seed=0)


def test_a_user_with_fewer_items_left_than_k_gets_what_is_left() -> None:
    items, values, _, _ = top_k(kept(), np.array([1]), HAS, k=5, n_explore=0, seed=0)
    assert items.tolist() == [[3, 4, 2, -1, -1]] and np.isnan(values[0, 3:]).all()


def test_k_may_not_exceed_the_candidates_kept() -> None:
    with pytest.raises(ValueError, match=r"recommend.k \(200\) is more than recommend.candidates \(100\)"):
        RecommendConfig(k=200)
    assert RecommendConfig(k=200, candidates=200).k == 200


def test_already_has_reads_positives_of_every_part() -> None:
    train = pd.DataFrame({"user": [0, 0, 1], "item": [4, 2, 0], "positive": [True, False, True]})
    test = pd.DataFrame({"user": [1], "item": [1], "positive": [True]})
    assert (already_has([train, test], 2, 5).toarray() == HAS.toarray()).all()


def test_the_frame_has_reasons_a_person_reads() -> None:
    notes = ItemNotes(np.array([10, 11, 12, 13, 14]), ["a", "b", "c", "d", "e"], ["jazz", "jazz", "chess", "chess", "jazz"],
                      [["sax"], ["trumpet"], ["opening"], ["endgame"], ["vinyl"]])
    config = RecommendConfig(k=2, exploration=0.5)  # one best item, one exploration slot
    frame = recommend(kept(uplift=lambda users: SCORES[users] / 10), np.array([0]), np.array(["u0"]), HAS, notes, config, 0,
                      "uplift", "uplift")
    first = frame.iloc[0]
    assert (first["user_id"], first["rank"], first["item_id"], first["title"]) == ("u0", 1, 11, "b")
    assert first["uplift"] == pytest.approx(0.05)
    assert first["reason"] == ("recommending it raises this user's chance of engaging the most: topic 'jazz' (trumpet); "
                               "estimated uplift +5.0 points for this user")
    assert frame.iloc[1]["exploration"] and frame.iloc[1]["reason"].startswith("exploration:")
    assert np.isnan(first["item_uplift_low"])  # no item intervals in the notes


def test_the_reason_gives_the_items_interval_where_there_is_one() -> None:
    bands = np.array([[0.01, -0.02, 0.04], [0.03, 0.012, 0.048], [0, 0, 0], [0, 0, 0], [0, 0, 0]])
    notes = ItemNotes(np.array([10, 11, 12, 13, 14]), None, None, None, bands)
    frame = recommend(kept(uplift=lambda users: SCORES[users] / 10), np.array([0]), np.array(["u0"]), HAS, notes,
                      RecommendConfig(k=1, exploration=0.0), 0, "uplift", "uplift")
    first = frame.iloc[0]
    assert (first["item_id"], first["item_uplift"], first["item_uplift_low"], first["item_uplift_high"]) == (11, 0.03, 0.012, 0.048)
    assert first["reason"].endswith("estimated uplift +5.0 points for this user, +3.0 on average over users (95% CI +1.2 to +4.8)")


def test_best_intervention_needs_an_interval_above_zero() -> None:
    metrics = {"interventions/a/lift": 0.5, "interventions/a/ci_low": -0.1,  # the biggest, but not detectable
               "interventions/b/lift": 0.2, "interventions/b/ci_low": 0.05,
               "interventions/c/lift": 0.1, "interventions/c/ci_low": 0.02}
    assert best_intervention(metrics, ["a", "b", "c"]) == ("b", "")
    assert best_intervention(metrics, ["a"]) == (None, "no intervention's lift has an interval above zero")


def test_without_the_gnn_the_stage_falls_back_to_popularity_and_says_why() -> None:
    from recause.tasks.recommend.stage import choose

    popularity = PolicySet("baseline", {"popularity": FunctionPolicy("popularity", scores)}, {})
    chosen = choose(RecommendConfig(strategy="uplift"), None, [popularity], None, None, None, None, {}, 0)
    assert chosen.label == "popularity" and chosen.strategy == "relevance"
    assert chosen.fallback == "uplift: the causal GNN was not trained; relevance: the causal GNN was not trained"
    with pytest.raises(ValueError, match="no policy to recommend with"):
        choose(RecommendConfig(), None, [], None, None, None, None, {}, 0)


def test_best_intervention_lists_come_from_that_intervention_policy() -> None:
    from recause.models.world.scm import WorldConfig
    from recause.tasks.baselines import BaselinesConfig, build_baselines
    from recause.tasks.contrast.config import ContrastConfig
    from recause.tasks.data.split import SplitConfig, split_dataset
    from recause.tasks.data.synthetic import load_synthetic
    from recause.tasks.recommend.stage import choose

    data = load_synthetic(WorldConfig(n_users=60, n_items=30, n_topics=3, slate_size=5, mean_sessions=4), seed=3)
    split = split_dataset(data, SplitConfig(), seed=3)
    baselines = build_baselines(split, data, BaselinesConfig(), seed=3)
    metrics = {"interventions/popularity/lift": 0.4, "interventions/popularity/ci_low": 0.1,
               "interventions/random/lift": 0.9, "interventions/random/ci_low": -0.2,  # larger, not detectable
               "interventions/oracle-uplift/lift": 2.0, "interventions/oracle-uplift/ci_low": 1.0}  # a yardstick
    chosen = choose(RecommendConfig(strategy="best_intervention"), None, [baselines], split, data, None, ContrastConfig(),
                    metrics, 3)
    assert (chosen.strategy, chosen.label, chosen.fallback) == ("best_intervention", "popularity", None)
    probabilities = chosen.scores(np.arange(4))
    assert probabilities.shape == (4, split.n_items) and np.allclose(probabilities.sum(axis=1), 1.0)
    # the popularity policy puts its most mass on the most popular item of the training log
    popular = np.bincount(split.train.loc[split.train["positive"], "item"], minlength=split.n_items).argmax()
    assert (probabilities.argmax(axis=1) == popular).all()
