"""RAG baseline and UDS judge with the real embedded model (two generations; slow, llm)."""

from __future__ import annotations

import pytest
from test_eval_helpers import FixedIndex, make_items, tiny_catalog

from rl_shop.evaluation.rag import RAGSettings, RAGSystem
from rl_shop.evaluation.uds import UDSJudge
from rl_shop.llm import load_llm_config, make_llm

pytestmark = [pytest.mark.slow, pytest.mark.llm]


@pytest.fixture(scope="module")
def llm():
    model = make_llm(load_llm_config("embedded", ["cache.enabled=false", "structured_retries=0"]))
    yield model
    model.close()


def test_rag_and_judge_with_the_embedded_model(llm):
    cat = tiny_catalog()
    item = make_items(cat)[0]  # sony headphones under $150
    candidates = ["h3", "h4", "h2", "h1", "h5"]
    rag = RAGSystem(
        llm,
        FixedIndex(candidates),
        cat,
        RAGSettings(n_candidates=5, k=5, max_picks=3, max_tokens=96, max_justification_chars=100),
    )
    out = rag.run(item, None)
    # constrained decoding: the output parses, every pick is a real candidate, the list keeps k slots
    assert out.llm_fallbacks == 0, out.extra["raw"]
    assert 1 <= len(out.extra["llm_picks"]) <= 3 and set(out.extra["llm_picks"]) <= set(candidates)
    assert (
        sorted(out.ranked_ids) == sorted(candidates)
        and out.ranked_ids[: len(out.extra["llm_picks"])] == out.extra["llm_picks"]
    )
    assert 20 <= len(out.answer) <= 100  # the schema's minLength / maxLength
    assert 0 < out.ttft_s <= out.total_s
    verdict = UDSJudge(llm, cat.set_index("product_id", drop=False)).score(item, out.ranked_ids, out.answer)
    assert verdict is not None and 1 <= verdict.overall <= 3
