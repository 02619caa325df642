"""The agent runtime reads requests without the simulator's language face (issue 13 item 1).

The generated benchmark is rendered by ``rl_shop.sim.render`` and the simulated shopper answers
through ``rl_shop.sim.answer_text``. A runtime that imported either could read requests by undoing
the generator's own templates, and the benchmark would measure the parser against its own dialect.
Each import check runs in a fresh interpreter, so nothing another test imported can hide an import.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LANGUAGE_FACE = ("rl_shop.sim.render", "rl_shop.sim.answer_text")


def _loaded_after(code: str) -> list[str]:
    """``rl_shop.sim.*`` modules loaded after running ``code`` in a fresh interpreter."""
    probe = (
        code + "\nimport json, sys\nprint(json.dumps(sorted(m for m in sys.modules if m.startswith('rl_shop.sim'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=600, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_every_agent_module_leaves_the_language_face_unloaded() -> None:
    loaded = _loaded_after(
        "import importlib, pkgutil, rl_shop.agents as A\n"
        "for m in pkgutil.walk_packages(A.__path__, 'rl_shop.agents.'):\n"
        "    importlib.import_module(m.name)"
    )
    assert "rl_shop.sim.slots" in loaded  # the probe sees what the agents do import
    assert not [m for m in LANGUAGE_FACE if m in loaded], loaded


def test_the_simulator_package_reexports_its_core_only() -> None:
    import rl_shop.sim as sim

    assert {"QUERY_TYPES", "Intent", "IntentSampler", "load_sim_config"} <= set(sim.__all__)
    face = {"render_query", "QueryRenderer", "answer_to_text", "Shopper", "load_benchmark"}
    assert not face & set(sim.__all__)


@pytest.mark.slow
def test_answering_a_request_and_a_clarification_leaves_the_language_face_unloaded() -> None:
    """The whole deterministic loop: build the runtime, read an ambiguous request, ask, answer."""
    loaded = _loaded_after(
        "import sys; sys.path.insert(0, 'tests')\n"
        "from test_agents_product_search import sub_index\n"
        "from rl_shop.agents.runtime import MACDFAssistant\n"
        "sub, index = sub_index()\n"
        "a = MACDFAssistant.from_config(['runtime.llm_enabled=false'], catalog=sub, index=index, memory_path=':memory:')\n"
        "res = a.run('i would like something nice for computers, not sure what', "
        "answer_fn=lambda slot, q: 'a laptop under 800 dollars', session_id='t', on_token=None)\n"
        "assert res.clarifications and res.products, res"
    )
    assert not [m for m in LANGUAGE_FACE if m in loaded], loaded
