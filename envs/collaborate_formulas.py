"""The formulas of ``rl_shop/Collaborate-v0``, written once for the single env and the batched kernels.

Each function works on Python scalars (the single Gymnasium env) and on numpy or torch arrays (the
batched kernels of ``envs.collaborate_kernel``): plain arithmetic is shared by all three, and the
few operations that differ (``minimum``, ``i64``, ``where``) come from an ``ops`` object
(``rl_shop.array_ops.SCALAR`` / ``NUMPY`` / ``TORCH``). The order of operations is the single env's,
so its pinned returns are unchanged bit for bit.
"""

from __future__ import annotations

from rl_shop.array_ops import ArrayOps, Batch, Flag, FormulaOps, Num
from rl_shop.policies.features.collaborate import N_TYPES


def uniform(lo: Num | float, hi: Num | float, u: Num) -> Num:
    """A value uniform in ``[lo, hi]`` from a uniform draw ``u`` in (0, 1)."""
    return lo + u * (hi - lo)


def uniform_int(ops: FormulaOps[Num], lo: int, hi: int, u: Num) -> Num:
    """An integer uniform in ``lo..hi`` from ``u`` in (0, 1)."""
    span = hi - lo + 1
    return lo + ops.minimum(ops.i64(u * span), span - 1)


def other_type(ops: FormulaOps[Num], t: Num, u: Num) -> Num:
    """A query type other than ``t``, uniform over the ``N_TYPES - 1`` others (a wrong prediction)."""
    k = ops.minimum(ops.i64(u * (N_TYPES - 1)), N_TYPES - 2)
    return ops.where(k < t, k, k + 1)


def toward_one(x: Num, gain: Num) -> Num:
    """``x`` moved a fraction ``gain`` of the way to 1 (clarity after a question, web evidence after a search)."""
    return x + gain * (1.0 - x)


def search_mean(rel_max: Num, clarity_floor: float, clarity: Num) -> Num:
    """Mean quality of a product search: the type's best Relevance, scaled by how clear the query is."""
    return rel_max * (clarity_floor + (1.0 - clarity_floor) * clarity)


def relevance(ops: FormulaOps[Num], R: Num, n_product_search: Num, min_product_searches: Num) -> Num:
    """Effective Relevance: ``R * min(1, n_product_search / min_product_searches[type])``."""
    return R * ops.minimum(n_product_search / min_product_searches, 1.0)


def satisfaction(relevance: Num, W: Num, web_need: Num) -> Num:
    """Hidden ``User_Satisfaction = (1 - web_need) * Relevance + web_need * W``."""
    return (1.0 - web_need) * relevance + web_need * W


def attractiveness(rank: Num, examination_eta: float, attr: float) -> Num:
    """Click probability at ``rank`` (1-based): examination ``1 / rank ** eta`` times attractiveness."""
    return (1.0 / rank**examination_eta) * attr


def reaction_reward(
    base: Num | float, w_click: float, w_purchase: float, w_reformulation: float, clicks: Num, buy: Num, reform: Num
) -> Num:
    """Reward of the shopper's reaction to the answer, added to ``base`` (minus the Decider's cost)."""
    return base + w_click * clicks + w_purchase * buy - w_reformulation * reform


def action_cost(c_latency: float, latency_s: Num, c_compute: float, compute: Num) -> Num:
    """Cost of taking an action: ``c_latency * latency_s + c_compute * compute`` (per action)."""
    return c_latency * latency_s + c_compute * compute


def noisy_estimate(ops: FormulaOps[Num], x: Num, sd: float, z: Num) -> Num:
    """A prediction of ``x`` in [0, 1] with Gaussian noise ``sd * z`` (the Leader's estimates, search draws)."""
    return ops.clip(x + sd * z, 0.0, 1.0)


def out_of_patience(n_clarify: Num, patience: Num) -> Num:
    """The shopper leaves when asked more questions than her patience."""
    return n_clarify > patience


def replan_repairs(bad_plan: Flag, u: Flag | float, p_replan_fix: float) -> Flag:
    """A re-plan repairs a bad plan with probability ``p_replan_fix``."""
    return bad_plan & (u < p_replan_fix)


def click_and_buy(
    ops: FormulaOps[Num], u_rel: Num, u_click: Num, u_buy: Num, q: Num, ea_rel: Num, ea_irr: Num, p_purchase: float
) -> tuple[Num, Num, Num]:
    """Position-based click model at one or more ranks: an item is relevant with probability ``q``
    (the answer's User_Satisfaction), clicked with its rank's attractiveness, bought when a
    clicked relevant item passes ``p_purchase``. Returns ``(relevant, clicked, bought)``."""
    relevant = u_rel < q
    clicked = u_click < ops.where(relevant, ea_rel, ea_irr)
    bought = clicked & relevant & (u_buy < p_purchase)
    return relevant, clicked, bought


def expected_reaction_reward(
    ops: ArrayOps[Batch],
    base: float,
    p_abandon: Batch | float,
    q: Batch,
    ea_rel: Batch,
    ea_irr: Batch,
    p_purchase: float,
    top_k: int,
    p_reformulate: float,
    weights: tuple[float, float, float, float],
) -> Batch:
    """The expectation, over the reaction's draws, of what :func:`click_and_buy`,
    :func:`reformulates` and abandonment pay, given User_Satisfaction ``q`` (one value per row)::

        E[clicks] = sum_r q a_r + (1 - q) b_r
        P(buy)    = 1 - prod_r (1 - q a_r p_purchase)
        P(reform) = p_reformulate (1 - q)^k prod_{r > k} (1 - q a_r p_purchase)
        E[reward] = (1 - p_abandon) (base + w_click E[clicks] + w_purchase P(buy)
                    - w_reformulation P(reform)) + p_abandon (base - w_abandon)

    Rows of arrays only (the single env passes a one-row numpy array).
    (``a_r`` / ``b_r``: attractiveness by rank of a relevant / irrelevant item; ranks are independent.
    A purchase in the top ``k`` needs a relevant item there, so "no relevant item in the top k and no
    purchase" leaves only the ranks below k to not sell.) ``weights``: ``(w_click, w_purchase,
    w_reformulation, w_abandon)``. Cuts the variance of the sampled terms without moving their mean.
    """
    w_click, w_purchase, w_reformulation, w_abandon = weights
    qr = q[:, None]
    clicks = ops.sum(qr * ea_rel + (1.0 - qr) * ea_irr, 1)
    log_keep = ops.log(1.0 - qr * ea_rel * p_purchase)  # log P(rank r does not sell)
    p_buy = 1.0 - ops.exp(ops.sum(log_keep, 1))
    p_reform = p_reformulate * (1.0 - q) ** top_k * ops.exp(ops.sum(log_keep[:, top_k:], 1))
    reacted = reaction_reward(base, w_click, w_purchase, w_reformulation, clicks, p_buy, p_reform)
    return (1.0 - p_abandon) * reacted + p_abandon * (base - w_abandon)


def reformulates(bought: Num, n_relevant_top: Num, u: Num, p_reformulate: float) -> Num:
    """Without a purchase and with nothing relevant in the top ranks, the shopper rephrases with ``p_reformulate``."""
    return (bought == 0) & (n_relevant_top == 0) & (u < p_reformulate)
