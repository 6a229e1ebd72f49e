"""Causal losses pinned to hand-computed values, their unbiasedness by enumeration, the heads, the
objective's validation, and one training step of the Lightning module."""

from __future__ import annotations

import dataclasses
import itertools
import math
import warnings

import pytest
import torch

from recause.models.gnn.module import CausalModule, Objective, log_intensity, logit
from recause.models.gnn.heads import CausalRecommender, PairHead
from recause.models.gnn.losses import (
    bce_prob,
    bpr_loss,
    cloglog_log_probs,
    dr_loss,
    examined_probability,
    inverse_propensity_weights,
    ips_loss,
    logged_intensity_loss,
    population_nll,
    targeted_regularisation,
    thinned_log_probs,
)
from recause.models.gnn.encoders import BipartiteGraph, LightGCNEncoder

warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
pytestmark = pytest.mark.usefixtures("one_thread")
T = torch.tensor


def close(value: torch.Tensor, expected: float) -> None:
    assert float(value) == pytest.approx(expected, abs=1e-6)


# ---------------------------------------------------------------------------------------------- losses
def test_bpr_by_hand() -> None:
    # -mean(log σ(2 - 0), log σ(0 - 0)) = (0.126928 + 0.693147) / 2
    close(bpr_loss(T([2.0, 0.0]), T([0.0, 0.0])), 0.410038)
    # k negatives per positive: the mean over all (positive, negative) pairs
    close(bpr_loss(T([2.0]), T([[0.0, 2.0]])), (0.126928 + 0.693147) / 2)


def test_ips_and_snips_by_hand() -> None:
    loss, p = T([1.0, 2.0]), T([0.5, 0.25])
    # weights 1/p = [2, 4]; IPS = share * mean(w * loss) = 0.1 * (2 + 8) / 2 = 0.5
    close(ips_loss(loss, p, observed_share=0.1), 0.5)
    # SNIPS = sum(w * loss) / sum(w) = 10 / 6
    close(ips_loss(loss, p, self_normalise=True), 10 / 6)
    # clip at 0.4: p -> [0.5, 0.4], w = [2, 2.5]; IPS = 0.1 * (2 + 5) / 2 = 0.35
    close(ips_loss(loss, p, clip=0.4, observed_share=0.1), 0.35)
    # a pair logged twice counts once: row weights [1, 1/2] -> w = [2, 2]; SNIPS = (2 + 4) / 4
    close(ips_loss(loss, p, self_normalise=True, row_weight=T([1.0, 0.5])), 1.5)


def test_dr_by_hand() -> None:
    # direct term over all pairs: BCE(0.5 | imputed 0.5) = ln 2 = 0.693147
    # one observed row: prediction 0.8, label 1, imputed 0.2, propensity 0.5, share 0.25
    #   BCE(0.8 | 1) = 0.223144; BCE(0.8 | 0.2) = 0.2*0.223144 + 0.8*1.609438 = 1.332179
    #   correction = 0.25 * (1 / 0.5) * (0.223144 - 1.332179) = -0.554518
    value = dr_loss(T([0.8]), T([1.0]), T([0.5]), T([0.2]), T([0.5]), T([0.5]), observed_share=0.25)
    close(value, 0.693147 - 0.554518)
    # the correction is -(y - m) * logit(q) / p (cross-entropy is linear in the label)
    close(dr_loss(T([0.8]), T([1.0]), T([0.5]), T([0.2]), T([0.5]), T([0.5]), self_normalise=True),
          0.693147 - 0.8 * math.log(4.0))


def test_dr_with_perfect_imputation_is_the_direct_term() -> None:
    prob, label = T([0.3, 0.9]), T([0.0, 1.0])
    value = dr_loss(prob, label, T([0.1, 0.7]), label, T([0.6]), T([1.0]), observed_share=0.5)
    close(value, float(bce_prob(T([0.6]), T([1.0]))[0]))


def test_ips_and_dr_are_unbiased_over_every_exposure_pattern() -> None:
    # three pairs with losses ℓ and propensities p, each exposed independently with p: the mean
    # of the IPS estimate over all 2^3 patterns (weighted by their probability) is mean(ℓ)
    label = T([1.0, 0.0, 1.0])
    prob = T([0.7, 0.4, 0.2])  # the model's predictions
    p = T([0.6, 0.3, 0.9])
    imputed = T([0.5, 0.5, 0.5])
    full = float(bce_prob(prob, label).mean())
    ips_mean = dr_mean = 0.0
    for pattern in itertools.product([0, 1], repeat=3):
        o = T(pattern, dtype=torch.bool)
        weight = float(torch.where(o, p, 1 - p).prod())
        if o.any():
            share = float(o.sum()) / 3
            ips_mean += weight * float(ips_loss(bce_prob(prob[o], label[o]), p[o], observed_share=share))
            dr_mean += weight * float(dr_loss(prob[o], label[o], p[o], imputed[o], prob, imputed, observed_share=share))
        else:
            dr_mean += weight * float(bce_prob(prob, imputed).mean())
    assert ips_mean == pytest.approx(full, rel=1e-6)
    assert dr_mean == pytest.approx(full, rel=1e-6)


def test_population_nll_by_hand() -> None:
    # positives: 0.1 * mean(-log 0.5, -log 0.25) = 0.1 * (0.693147 + 1.386294) / 2 = 0.103972
    # uniform pairs: -(log 0.9 + log 0.8 + 0 * log 0.5) / 3 = (0.105361 + 0.223144) / 3 = 0.109502
    value = population_nll(T([0.5, 0.25]).log(), T([0.9, 0.8, 0.5]).log(), T([1.0, 1.0, 0.0]), positive_share=0.1)
    close(value, 0.103972 + 0.109502)


def test_link_functions_by_hand() -> None:
    # cloglog: λ = e^{ln 2} = 2 over half the log: rate 1, p = 1 - e^{-1} = 0.632121
    log_p, log_q = cloglog_log_probs(T([math.log(2.0)]), T([0.5]))
    close(log_p, math.log(1 - math.exp(-1)))
    close(log_q, -1.0)
    # thinned logistic: σ(0) = 0.5 kept with 0.2: p = 0.1
    log_p, log_q = thinned_log_probs(T([0.0]), 0.2)
    close(log_p, math.log(0.1))
    close(log_q, math.log(0.9))
    # examination: 0.1 + 0.5 * (0.5 - 0.1) = 0.3
    close(examined_probability(T(0.1), T(0.5), T(0.5)), 0.3)
    assert log_intensity(1 - math.exp(-2.0)) == pytest.approx(math.log(2.0))
    assert logit(0.25) == pytest.approx(math.log(1 / 3))


def test_logged_intensity_loss_by_hand() -> None:
    # row 1: g = 1 - e^{-2} over the whole log (r = 1): x* = ln 2; x = 0 -> (ln 2)^2 = 0.480453
    # row 2: g = 1 - e^{-1} over half the log: rate 1 = 0.5 e^{x*}, x* = ln 2; x = ln 2 -> 0
    # row 3: no logged propensity (NaN) -> 0; row weights 1, 3, 2, a plain mean over the 3 rows:
    # (1 * 0.480453 + 3 * 0 + 0) / 3 = 0.160151
    logged = T([1 - math.exp(-2.0), 1 - math.exp(-1.0), float("nan")])
    value = logged_intensity_loss(T([0.0, math.log(2.0), 5.0]), logged, T([1.0, 0.5, 1.0]), T([1.0, 3.0, 2.0]))
    close(value, math.log(2.0) ** 2 / 3)
    # a plain mean: the two halves' mean is the whole batch's (DDP's shards)
    x, g, r, w = T([0.3, -1.0, 2.0, 0.5]), T([0.2, 0.6, float("nan"), 0.9]), T([1.0, 0.8, 0.5, 0.7]), T([1.0, 0.5, 1.0, 0.25])
    halves = (logged_intensity_loss(x[:2], g[:2], r[:2], w[:2]) + logged_intensity_loss(x[2:], g[2:], r[2:], w[2:])) / 2
    close(halves, float(logged_intensity_loss(x, g, r, w)))
    # no known propensity: 0, not NaN
    close(logged_intensity_loss(T([1.0]), T([float("nan")])), 0.0)


def test_the_logged_propensity_loss_trains_the_exposure_model_alone() -> None:
    model, graph = small_model({"exposed": "shared", "unexposed": "shared", "propensity": "shared"})
    objective = Objective("causal", train_propensity=True, unexposed=True, logged_propensity_weight=2.0)
    module = CausalModule(model, graph, objective)
    loss, parts = module.model_step(causal_batch())
    off = CausalModule(model, graph, dataclasses.replace(objective, logged_propensity_weight=0.0)).model_step(causal_batch())[1]
    assert "logged_propensity" not in off and float(parts["logged_propensity"].detach()) > 0
    for head in ("exposed", "unexposed"):
        for parameter in model.heads[head].parameters():
            assert torch.equal(grad_of(parts["logged_propensity"], parameter), torch.zeros_like(parameter))
    assert float(grad_of(parts["logged_propensity"], model.heads["propensity"].user_bias.bias)[0]) != 0.0


def test_targeted_regularisation_by_hand() -> None:
    # Q~ = Q + ε (T/g - (1-T)/(1-g)), ε = 0.1, g = 0.5: treated 0.6 + 0.2 = 0.8, control 0.2 - 0.2 = 0
    # mean((1 - 0.8)^2, (0 - 0)^2) = 0.02
    value = targeted_regularisation(T([1.0, 0.0]), T([0.6, 0.2]), T([1.0, 0.0]), T([0.5, 0.5]), T(0.1))
    close(value, 0.02)
    # row weights make it a population mean: weights [3, 1] -> 3 * 0.04 / 4 = 0.03
    close(targeted_regularisation(T([1.0, 0.0]), T([0.6, 0.2]), T([1.0, 0.0]), T([0.5, 0.5]), T(0.1), T([3.0, 1.0])), 0.03)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"weighting": "ips", "propensity": "learned", "train_propensity": False}, "needs train_propensity"),
        ({"targeted_weight": 0.5, "train_propensity": True}, "targeted regularisation needs"),
        ({"clip": 1.0}, "clip must lie in"),
        ({"logged_propensity_weight": 0.3}, "regression on the logged propensities needs"),
    ],
)
def test_invalid_objectives_are_rejected(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Objective("causal", **kwargs)


def test_weights_reject_a_bad_clip() -> None:
    with pytest.raises(ValueError, match="clip must lie in \\[0, 1\\)"):
        inverse_propensity_weights(T([0.5]), clip=-0.1)


# ---------------------------------------------------------------------------------------------- heads and model
def test_pair_head_forms_agree_and_start_as_a_dot_product() -> None:
    head = PairHead(4, bias=-2.0)
    hu, hi = torch.randn(3, 4), torch.randn(5, 4)
    grid = head.grid(hu, hi)
    torch.testing.assert_close(grid, hu @ hi.T - 2.0)  # identity factors at initialisation
    with torch.no_grad():
        head.user.weight.normal_()
        head.item_bias.weight.normal_()
    pairs = head(hu[:, None, :], hi[None, :, :])
    torch.testing.assert_close(pairs, head.grid(hu, hi))


def small_model(heads: dict[str, str], n_slots: int = 3) -> tuple[CausalRecommender, BipartiteGraph]:
    torch.manual_seed(0)
    graph = BipartiteGraph.from_pairs(T([0, 1, 2, 2]), T([0, 1, 1, 3]), n_users=3, n_items=4)
    encoders = {name: LightGCNEncoder(3, 4, dim=8, num_layers=1) for name in set(heads.values())}
    return CausalRecommender(encoders, heads, {"exposed": -1.0}, n_slots=n_slots), graph


def test_gathered_tables_equal_direct_logits_and_slots_examine() -> None:
    model, graph = small_model({"exposed": "shared", "unexposed": "shared"})
    states = model.states(graph)
    users, items = T([0, 2, 1]), T([3, 4, 6])
    tables = model.tables(states, torch.unique(torch.cat([users, items])))
    torch.testing.assert_close(model.logit(states, "exposed", users, items, tables), model.logit(states, "exposed", users, items))
    kappa = model.examination(T([-1, 0, 1, 2]))
    assert kappa[:2].tolist() == [1.0, 1.0] and torch.allclose(kappa[2:], T([0.5, 0.5]))


def test_heads_must_exist_and_read_a_known_encoder() -> None:
    with pytest.raises(ValueError, match="heads must be among"):
        small_model({"exposed": "shared", "clicks": "shared"})
    encoders = {"shared": LightGCNEncoder(3, 4, dim=8)}
    with pytest.raises(ValueError, match="read one of"):
        CausalRecommender(encoders, {"exposed": "treated"})


def test_the_exposure_covariate_adds_the_scaled_centred_log_intensity_and_leaves_the_exposure_model_alone() -> None:
    heads = {"exposed": "shared", "unexposed": "shared", "propensity": "shared"}
    torch.manual_seed(0)
    graph = BipartiteGraph.from_pairs(T([0, 1, 2, 2]), T([0, 1, 1, 3]), n_users=3, n_items=4)
    model = CausalRecommender({"shared": LightGCNEncoder(3, 4, dim=8, num_layers=1)}, heads, {"exposed": -1.0}, n_slots=3,
                              exposure_covariate=("exposed", "unexposed"))
    with torch.no_grad():  # a propensity head with every term in play: projections, per-node biases, constant
        for parameter in model.heads["propensity"].parameters():
            parameter.normal_()
    states = model.states(graph)
    users, items = T([0, 2, 1, 1]), T([3, 4, 6, 5])
    h = states["shared"]
    own = {head: model.heads[head](h[users], h[items]) for head in heads}
    # the scales start at 0: each outcome head is its own pair score
    for head in ("exposed", "unexposed"):
        torch.testing.assert_close(model.logit(states, head, users, items), own[head])
    # the covariate: log λ̂(u,i) - log λ̂(mean user, i) - log λ̂(u, mean item) + log λ̂(mean user, mean item)
    propensity = model.heads["propensity"]
    mean_user, mean_item = h[:3].mean(0), h[3:].mean(0)
    centred = (propensity(h[users], h[items]) - propensity(mean_user.expand(4, -1), h[items])
               - propensity(h[users], mean_item.expand(4, -1)) + propensity(mean_user, mean_item))
    with torch.no_grad():
        model.exposure_scale["exposed"].fill_(0.7)
        model.exposure_scale["unexposed"].fill_(-0.2)
    torch.testing.assert_close(model.logit(states, "exposed", users, items), own["exposed"] + 0.7 * centred)
    torch.testing.assert_close(model.logit(states, "unexposed", users, items), own["unexposed"] - 0.2 * centred)
    torch.testing.assert_close(model.logit(states, "propensity", users, items), own["propensity"])  # itself unchanged
    # the grid and the gathered tables give the same logits; over the population the covariate has no
    # user or item main effect (popularity, which drives exposure, stays in the exposure model)
    tables = model.tables(states, torch.unique(torch.cat([users, items])))
    torch.testing.assert_close(model.logit(states, "exposed", users, items, tables), own["exposed"] + 0.7 * centred)
    grid = model.grid(states, "exposed", T([0, 1, 2]), T([3, 4, 5, 6]))
    torch.testing.assert_close(grid[users, items - 3], own["exposed"] + 0.7 * centred)
    covariate = model.exposure_interaction(states, T([0, 1, 2]), T([3, 4, 5, 6]))
    torch.testing.assert_close(covariate.mean(0), torch.zeros(4), atol=1e-6, rtol=0)
    torch.testing.assert_close(covariate.mean(1), torch.zeros(3), atol=1e-6, rtol=0)
    # handed on as plain heads of the states (the simulator's start), the covariate folded in gives the same logits
    standalone = model.standalone_heads(mean_user.detach(), mean_item.detach())
    assert standalone["propensity"] is model.heads["propensity"]
    for head in ("exposed", "unexposed"):
        torch.testing.assert_close(standalone[head](h[users], h[items]), model.logit(states, head, users, items))
    # the outcome likelihoods train the scales but never the exposure model (its log-intensity is a fixed covariate)
    module = CausalModule(model, graph, Objective("causal", train_propensity=True, unexposed=True))
    _, parts = module.model_step(causal_batch())
    outcome = parts["exposed"] + parts["unexposed"]
    for parameter in model.heads["propensity"].parameters():
        assert torch.equal(grad_of(outcome, parameter), torch.zeros_like(parameter))
    assert all(abs(float(grad_of(parts[head], model.exposure_scale[head]))) > 1e-8 for head in ("exposed", "unexposed"))
    # the scales learn at the scalars' rate
    groups = module.configure_optimizers().param_groups
    fast = next(g for g in groups if g["lr"] == pytest.approx(30 * module.lr))
    assert {id(p) for p in model.exposure_scale.values()} <= {id(p) for p in fast["params"]}


def test_a_shared_exposure_scale_is_one_parameter_for_both_outcome_heads() -> None:
    import copy

    heads = {"exposed": "shared", "unexposed": "shared", "propensity": "shared"}
    torch.manual_seed(0)
    graph = BipartiteGraph.from_pairs(T([0, 1, 2, 2]), T([0, 1, 1, 3]), n_users=3, n_items=4)
    model = CausalRecommender({"shared": LightGCNEncoder(3, 4, dim=8, num_layers=1)}, heads, {"exposed": -1.0}, n_slots=3,
                              exposure_covariate=("exposed", "unexposed"), shared_exposure_scale=True)
    scale = model.exposure_scale["exposed"]
    assert model.exposure_scale["unexposed"] is scale
    module = CausalModule(model, graph, Objective("causal", train_propensity=True, unexposed=True))
    optimiser = module.configure_optimizers()
    assert sum(p is scale for group in optimiser.param_groups for p in group["params"]) == 1  # listed once
    # both likelihoods train the one scale; a step moves both heads' covariate term alike
    loss, _ = module.model_step(causal_batch())
    loss.backward()
    optimiser.step()
    assert float(scale) != 0.0 and float(model.exposure_scale["unexposed"]) == float(scale)
    # the state dict names it per head; a copy (a snapshot) and a reload keep one value for both
    state = model.state_dict()
    assert float(state["exposure_scale.exposed"]) == float(state["exposure_scale.unexposed"]) == float(scale)
    twin = copy.deepcopy(model)
    assert twin.exposure_scale["unexposed"] is twin.exposure_scale["exposed"] is not scale
    fresh = CausalRecommender({"shared": LightGCNEncoder(3, 4, dim=8, num_layers=1)}, heads, {"exposed": -1.0}, n_slots=3,
                              exposure_covariate=("exposed", "unexposed"), shared_exposure_scale=True)
    fresh.load_state_dict(state)
    assert float(fresh.exposure_scale["unexposed"]) == float(scale)
    # per head: two parameters
    per_head = CausalRecommender({"shared": LightGCNEncoder(3, 4, dim=8, num_layers=1)}, heads, n_slots=3,
                                 exposure_covariate=("exposed", "unexposed"))
    assert per_head.exposure_scale["exposed"] is not per_head.exposure_scale["unexposed"]


COVARIATE_HEADS = {"exposed": "shared", "unexposed": "shared", "propensity": "shared"}


def covariate_model(**kwargs) -> tuple[CausalRecommender, BipartiteGraph, dict[str, torch.Tensor]]:
    """3 users × 4 items, f1 and f0 reading the exposure covariate at one shared scale set to 0.5, a random
    propensity head (so λ̃ is not 0); ``kwargs`` go to :class:`CausalRecommender`. Returns the model, its graph and
    its states."""
    torch.manual_seed(0)
    graph = BipartiteGraph.from_pairs(T([0, 1, 2, 2]), T([0, 1, 1, 3]), n_users=3, n_items=4)
    model = CausalRecommender({"shared": LightGCNEncoder(3, 4, dim=8, num_layers=1)}, COVARIATE_HEADS,
                              exposure_covariate=("exposed", "unexposed"), shared_exposure_scale=True, **kwargs)
    with torch.no_grad():
        for parameter in model.heads["propensity"].parameters():
            parameter.normal_()
        model.exposure_scale["exposed"].fill_(0.5)
    return model, graph, model.states(graph)


def test_a_per_item_deviation_of_the_scale_moves_only_its_head_and_item() -> None:
    heads = COVARIATE_HEADS
    model, _, states = covariate_model(n_slots=3, item_exposure_scale=("exposed",))
    assert set(model.item_exposure_scale) == {"exposed"} and model.item_exposure_scale["exposed"].shape == (4,)
    users, items = T([0, 2, 1, 1]), T([3, 4, 6, 5])
    before = {head: model.logit(states, head, users, items) for head in ("exposed", "unexposed")}
    covariate = model.exposure_interaction(states, T([0, 1, 2]), T([3, 4, 5, 6]))[users, items - 3]
    with torch.no_grad():
        model.item_exposure_scale["exposed"][3] = 0.25  # item 3 (node 6): its scale in f1 is 0.5 + 0.25
    expected = before["exposed"] + torch.where(items == 6, 0.25 * covariate, torch.zeros_like(covariate))
    torch.testing.assert_close(model.logit(states, "exposed", users, items), expected)
    torch.testing.assert_close(model.logit(states, "unexposed", users, items), before["unexposed"])  # f0 keeps s alone
    tables = model.tables(states, torch.unique(torch.cat([users, items])))
    torch.testing.assert_close(model.logit(states, "exposed", users, items, tables), expected)
    torch.testing.assert_close(model.grid(states, "exposed", T([0, 1, 2]), T([3, 4, 5, 6]))[users, items - 3], expected)
    # (B, k) items, as BPR's negatives come
    grid = model.grid(states, "exposed", users[:2], T([3, 4, 5, 6]))  # rows: users 0 and 2
    torch.testing.assert_close(model.logit(states, "exposed", users[:2], T([[3, 6], [4, 6]])),
                               torch.stack([grid[0, [0, 3]], grid[1, [1, 3]]]))
    # handed on as plain heads, the deviations are left out: f1 as if every δ were 0
    h = states["shared"]
    standalone = model.standalone_heads(h[:3].mean(0).detach(), h[3:].mean(0).detach())
    torch.testing.assert_close(standalone["exposed"](h[users], h[items]), before["exposed"])
    with pytest.raises(ValueError, match="item_exposure_scale names heads"):
        CausalRecommender({"shared": LightGCNEncoder(3, 4, dim=8)}, heads, exposure_covariate=("unexposed",),
                          item_exposure_scale=("exposed",))


def test_a_zero_start_begins_the_outcome_heads_at_their_main_effects_plus_the_covariate() -> None:
    model, graph, states = covariate_model(head_bias={"exposed": -2.0, "unexposed": -3.0},
                                           zero_start=("exposed", "unexposed"))
    for head in ("exposed", "unexposed"):  # V = 0, U = I: the bilinear term is 0 at the start
        assert not model.heads[head].item.weight.any() and torch.equal(model.heads[head].user.weight, torch.eye(8))
    propensity = CausalRecommender({"shared": LightGCNEncoder(3, 4, dim=8)}, COVARIATE_HEADS, zero_start=("exposed",))
    assert torch.equal(propensity.heads["propensity"].item.weight, torch.eye(8))  # unnamed heads: the dot product
    users, items = T([0, 2, 1, 1]), T([3, 4, 6, 5])
    covariate = model.exposure_interaction(states, T([0, 1, 2]), T([3, 4, 5, 6]))[users, items - 3]
    # a fresh head's main effects are its constant: f1's logit is -2 + 0.5 λ̃, f0's -3 + 0.5 λ̃ (one shared scale)
    torch.testing.assert_close(model.logit(states, "exposed", users, items), -2.0 + 0.5 * covariate)
    torch.testing.assert_close(model.logit(states, "unexposed", users, items), -3.0 + 0.5 * covariate)
    # ... and the bilinear term grows from there: V's gradient is not 0
    model.logit(states, "exposed", users, items).sum().backward()
    assert model.heads["exposed"].item.weight.grad.abs().sum() > 0
    # the zero-started maps learn at zero_start_lr × lr, each listed once; every other parameter keeps its group
    module = CausalModule(model, graph, Objective("causal", train_propensity=True, unexposed=True), lr=0.01,
                          zero_start_lr=0.3)
    groups = module.configure_optimizers().param_groups
    slow = [g for g in groups if g["lr"] == pytest.approx(0.003)]
    assert len(slow) == 1 and {id(p) for p in slow[0]["params"]} == {id(model.heads[h].item.weight)
                                                                     for h in ("exposed", "unexposed")}
    listed = [id(p) for g in groups for p in g["params"]]
    assert sorted(listed) == sorted({id(p) for p in model.parameters()}) and len(listed) == len(set(listed))
    with pytest.raises(ValueError, match="zero_start_lr must be positive"):
        CausalModule(model, graph, Objective("causal"), zero_start_lr=0.0)
    with pytest.raises(ValueError, match="no bilinear map"):
        PairHead(8, kind="dot", zero_start=True)
    with pytest.raises(ValueError, match="zero_start names heads"):
        CausalRecommender({"shared": LightGCNEncoder(3, 4, dim=8)}, {"exposed": "shared"}, zero_start=("unexposed",))


def test_the_exposure_covariate_needs_the_propensity_head_and_the_full_graph() -> None:
    encoders = {"shared": LightGCNEncoder(3, 4, dim=8)}
    with pytest.raises(ValueError, match="needs the propensity head"):
        CausalRecommender(encoders, {"exposed": "shared", "unexposed": "shared"}, exposure_covariate=("exposed",))
    with pytest.raises(ValueError, match="names other heads"):
        CausalRecommender(encoders, {"exposed": "shared", "propensity": "shared"}, exposure_covariate=("propensity",))
    model = CausalRecommender(encoders, {"exposed": "shared", "propensity": "shared"}, exposure_covariate=("exposed",))
    sampled = {"shared": torch.zeros(5, 8)}  # a sampled subgraph's 5 nodes: no population means to centre on
    with pytest.raises(ValueError, match="full graph"):
        model.logit(sampled, "exposed", T([0]), T([4]))


def causal_batch() -> dict[str, torch.Tensor]:
    # node positions: users 0..2, items 3..6
    return {
        "exp_share": T(0.25), "pos_share": T(0.2), "org_share": T(0.1),
        "exp_u": T([0, 1, 2]), "exp_i": T([3, 4, 5]), "exp_y": T([1.0, 0.0, 0.0]), "exp_slot": T([0, 1, 2]),
        "exp_pw": T([1.0, 1.0, 0.5]), "exp_lp": T([0.5, 0.2, 0.3]), "exp_r": T([0.8, 0.8, 0.8]),
        "pos_u": T([0, 1]), "pos_i": T([3, 4]), "pos_r": T([0.8, 0.8]),
        "org_u": T([2]), "org_i": T([6]), "org_r": T([0.8]),
        "uni_u": T([0, 2, 1]), "uni_i": T([6, 3, 4]), "uni_r": T([0.8, 0.8, 0.8]),
        "uni_e": T([0.0, 0.0, 1.0]), "uni_f": T([0.0, 0.0, 0.0]), "uni_y1": T([0.0, 0.0, 0.0]),
    }


def grad_of(value: torch.Tensor, parameter: torch.Tensor) -> torch.Tensor:
    """d value / d parameter (zeros where value does not depend on it)."""
    (grad,) = torch.autograd.grad(value, parameter, retain_graph=True, allow_unused=True)
    return torch.zeros_like(parameter) if grad is None else grad


def finite_difference(loss_of, parameter: torch.Tensor, step: float = 1e-6) -> float:
    """Central difference of a scalar loss w.r.t. a one-element parameter."""
    with torch.no_grad():
        parameter.add_(step)
        up = float(loss_of())
        parameter.sub_(2 * step)
        down = float(loss_of())
        parameter.add_(step)
    return (up - down) / (2 * step)


@pytest.fixture
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.mark.parametrize("weighting", ["none", "ips", "snips", "dr", "sndr"])
def test_one_step_trains_every_head_it_uses(weighting: str, float64) -> None:
    """Every head's gradient is the loss's true derivative (finite differences, in float64) and is
    non-zero; each part of the loss leaves the heads it does not model exactly untouched."""
    heads = {"exposed": "shared", "unexposed": "shared", "propensity": "shared"}
    if weighting in ("dr", "sndr"):
        heads["imputation"] = "shared"
    model, graph = small_model(heads)
    adjacency = graph.adjacency.to(torch.float64)  # the graph is built in float32 whatever the default
    graph = dataclasses.replace(graph, adjacency=adjacency, adjacency_t=adjacency, degree=graph.degree.double())
    objective = Objective("causal", weighting=weighting, train_propensity=True, unexposed=True, targeted_weight=0.1)
    module = CausalModule(model, graph, objective)
    batch = {k: v.double() if v.is_floating_point() else v for k, v in causal_batch().items()}
    loss, parts = module.model_step(batch)
    assert torch.isfinite(loss) and set(parts) >= {"exposed", "propensity", "unexposed", "targeted", "l2"}
    assert loss.dtype == torch.float64
    # every head the objective uses gets a gradient
    head_grads = {head: float(grad_of(loss, model.heads[head].user_bias.bias)[0]) for head in heads}
    assert all(abs(g) > 1e-6 for g in head_grads.values()), head_grads
    # learned propensities enter the exposed-row weights detached: the weights never train the exposure model
    for parameter in model.heads["propensity"].parameters():
        assert torch.equal(grad_of(parts["exposed"], parameter), torch.zeros_like(parameter))
    # so are the doubly robust imputations: m is trained by its own likelihood only
    if "imputation" in heads:
        for parameter in model.heads["imputation"].parameters():
            assert torch.equal(grad_of(parts["exposed"], parameter), torch.zeros_like(parameter))
    # the exposure and organic likelihoods do not touch f1's head, nor the exposure likelihood f0's
    for parameter in model.heads["exposed"].parameters():
        assert torch.equal(grad_of(parts["propensity"] + parts["unexposed"], parameter), torch.zeros_like(parameter))
    for parameter in model.heads["unexposed"].parameters():
        assert torch.equal(grad_of(parts["propensity"], parameter), torch.zeros_like(parameter))
    # ε lives only in the targeted regulariser
    others = sum(v for k, v in parts.items() if k != "targeted")
    assert float(grad_of(others, model.epsilon)) == 0.0
    eps_grad = float(grad_of(loss, model.epsilon))
    assert abs(eps_grad) > 1e-6
    # slots 2 and 3 are examined (κ is learned); slot 1's κ is fixed at 1 and has no parameter
    assert (grad_of(loss, model.examination_logit).abs() > 1e-8).all()
    # and the gradients are the loss's true derivatives (central differences, after autograd is done),
    # except through the stop-gradients: the weights' propensity and the imputation's f0
    total = lambda: module.model_step(batch)[0]  # noqa: E731
    without_exposed = lambda: (lambda out: out[0] - out[1]["exposed"])(module.model_step(batch))  # noqa: E731
    for head, grad in head_grads.items():
        bias = model.heads[head].user_bias.bias
        if head == "unexposed" and weighting in ("dr", "sndr"):
            continue  # f0 enters the doubly robust terms both attached (q) and detached (m): no loss to difference
        if head == "imputation" or (head == "propensity" and weighting != "none"):
            # the weights' g and the doubly robust imputations m are constants of the exposed-row loss: the full
            # loss moves with them, but that path is cut, so the gradient is the derivative of the rest
            assert abs(finite_difference(total, bias) - grad) > 1e-4
            assert grad == pytest.approx(finite_difference(without_exposed, bias), rel=1e-5, abs=1e-9)
            continue
        assert grad == pytest.approx(finite_difference(total, bias), rel=1e-5, abs=1e-9), head
    assert eps_grad == pytest.approx(finite_difference(total, model.epsilon), rel=1e-5)


def test_t_learner_keeps_the_control_arm_out_of_the_exposed_likelihood() -> None:
    model, graph = small_model({"exposed": "treated", "unexposed": "control"})
    objective = Objective("causal", unexposed=True, detach_control=True)
    batch = causal_batch()
    loss, parts = CausalModule(model, graph, objective).model_step(batch)
    control = model.encoders["control"].input.embedding.weight
    treated = model.encoders["treated"].input.embedding.weight
    # the exposed rows train the treated arm only ...
    assert torch.equal(grad_of(parts["exposed"], control), torch.zeros_like(control))
    for parameter in [*model.encoders["control"].parameters(), *model.heads["unexposed"].parameters()]:
        assert torch.equal(grad_of(parts["exposed"], parameter), torch.zeros_like(parameter))
    assert grad_of(parts["exposed"], treated).abs().sum() > 0
    # ... and the organic likelihood the control arm only
    assert grad_of(parts["unexposed"], control).abs().sum() > 0
    assert torch.equal(grad_of(parts["unexposed"], treated), torch.zeros_like(treated))
    # without the detach, the same exposed rows would reach f0 (so the zero above is the detach's doing)
    model, graph = small_model({"exposed": "treated", "unexposed": "control"})
    _, attached = CausalModule(model, graph, Objective("causal", unexposed=True)).model_step(batch)
    assert grad_of(attached["exposed"], model.encoders["control"].input.embedding.weight).abs().sum() > 0


def test_scores_are_probabilities_and_propensities() -> None:
    import numpy as np

    model, graph = small_model({"exposed": "shared", "propensity": "shared"})
    module = CausalModule(model, graph, Objective("causal", train_propensity=True))
    users = np.array([0, 2])
    with torch.no_grad():
        h = model.states(graph)["shared"].double()
    # fresh heads are a dot product plus the head's bias (exposed: -1, propensity: 0)
    dot = (h[users] @ h[3:].T).numpy()
    exposed, propensity = module.scores(users, "exposed"), module.scores(users, "propensity")
    assert exposed.shape == propensity.shape == (2, 4)
    np.testing.assert_allclose(exposed, 1 / (1 + np.exp(-(dot - 1.0))), rtol=1e-5)
    np.testing.assert_allclose(propensity, 1 - np.exp(-np.exp(dot)), rtol=1e-5)  # g = 1 - e^{-λ}, λ = e^{logit}
    assert ((exposed > 0) & (exposed < 1)).all() and ((propensity > 0) & (propensity < 1)).all()
    bpr = CausalModule(model, graph, Objective("bpr"))
    np.testing.assert_allclose(bpr.scores(users, "exposed"), dot - 1.0, rtol=1e-5, atol=1e-7)  # BPR scores are raw logits


def test_snapshot_scores_are_the_mean_of_the_snapshots_scores_and_leave_the_weights_alone() -> None:
    import numpy as np

    text = torch.randn(7, 5)
    graph = BipartiteGraph.from_pairs(T([0, 1, 2, 2]), T([0, 1, 1, 3]), n_users=3, n_items=4)
    torch.manual_seed(0)
    model = CausalRecommender({"shared": LightGCNEncoder(3, 4, dim=8, num_layers=1, text=text)},
                              {"exposed": "shared", "unexposed": "shared", "propensity": "shared"},
                              exposure_covariate=("exposed", "unexposed"))
    module = CausalModule(model, graph, Objective("causal", train_propensity=True, unexposed=True))
    users = np.array([0, 2])
    states = []
    for step in range(3):  # three different sets of weights, as three validation checks would hold
        with torch.no_grad():
            for p in module.parameters():
                p.add_(0.3 * torch.randn_like(p))
        states.append({k: v.detach().clone() for k, v in module.state_dict().items()})
    module.forget_states()
    own = {head: module.scores(users, head) for head in ("exposed", "unexposed", "propensity")}
    each = []
    for state in states:
        module.load_state_dict(state)
        module.forget_states()
        each.append({head: module.scores(users, head) for head in own})
    module.load_state_dict(states[-1])
    module.forget_states()
    module.use_snapshots(states)
    for head in own:
        np.testing.assert_allclose(module.scores(users, head), np.mean([e[head] for e in each], axis=0), rtol=1e-6)
        assert not np.allclose(module.scores(users, head), each[-1][head])  # the snapshots differ from the last
    assert module.state_dict().keys() == states[-1].keys()  # the copies are not the module's parameters
    for key, value in module.state_dict().items():
        assert torch.equal(value, states[-1][key]), key  # its own weights are the last check's
    assert all(m.encoders["shared"].input.text is model.encoders["shared"].input.text for m in module.snapshots)
    module.use_snapshots([])
    np.testing.assert_allclose(module.scores(users, "exposed"), each[-1]["exposed"], rtol=1e-6)


def test_a_dot_head_is_lightgcns_inner_product_plus_a_constant() -> None:
    import torch

    from recause.models.gnn.heads import PairHead

    head = PairHead(4, bias=-2.0, kind="dot")
    h_u, h_i = torch.randn(3, 4), torch.randn(5, 4)
    expected = h_u @ h_i.T - 2.0
    assert torch.allclose(head.grid(h_u, h_i), expected, atol=1e-6)
    assert torch.allclose(head(h_u[:, None, :], h_i[None, :, :]), expected, atol=1e-6)
    assert [n for n, p in head.named_parameters() if p.requires_grad] == ["user_bias.bias"]  # only the constant learns
    with pytest.raises(ValueError, match="bilinear' or 'dot"):
        PairHead(4, kind="mlp")
