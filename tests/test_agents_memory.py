"""Memory System Layer: typed API over SQLite, JSON payloads, thread safety, persistence."""

from __future__ import annotations

import json
import sqlite3
import threading

import networkx as nx
import pytest

from rl_shop.agents.config import AgentConfigError
from rl_shop.agents.memory import Memory
from rl_shop.agents.types import TaskState


def test_task_states_roundtrip_and_update():
    mem = Memory(":memory:")
    mem.put_task_state(TaskState(session_id="s1", task_id="t2", status="pending"))
    mem.put_task_state(TaskState(session_id="s1", task_id="t1", status="running", started_at=10.0))
    mem.put_task_state(
        TaskState(session_id="s1", task_id="t1", status="done", started_at=10.0, finished_at=10.5, detail={"n": 3})
    )
    mem.put_task_state(TaskState(session_id="other", task_id="t1", status="failed", error="boom"))
    states = mem.get_task_states("s1")
    assert [s.task_id for s in states] == ["t1", "t2"]
    assert states[0].status == "done" and states[0].duration_s == pytest.approx(0.5) and states[0].detail == {"n": 3}
    assert mem.get_task_states("other")[0].error == "boom"


def test_outputs_context_history_and_dump():
    mem = Memory()
    mem.append_output("ProductSearch", "s1", {"ids": ["p1", "p2"]}, task_id="t1")
    mem.append_output("WebSearch", "s1", {"summary": "x"}, task_id="t2")
    mem.set_context("s1", "Guider", "slots", {"budget": 100})
    mem.set_context("s1", "Guider", "slots", {"budget": 80})  # overwrite
    assert mem.outputs("s1", "ProductSearch") == [
        {"agent": "ProductSearch", "task_id": "t1", "payload": {"ids": ["p1", "p2"]}}
    ]
    assert mem.get_context("s1", "Guider", "slots") == {"budget": 80}
    assert mem.get_context("s1", "Guider", "missing", default=7) == 7
    for i in range(5):
        mem.add_user_event("u1", "click", {"product_id": f"p{i}"})
    hist = mem.user_history("u1", limit=3)
    assert [h["payload"]["product_id"] for h in hist] == ["p2", "p3", "p4"]  # the 3 newest, oldest first
    g = nx.DiGraph([("t1", "t3"), ("t2", "t3")])
    mem.save_graph("s1", g)
    dumped = mem.dump("s1")
    json.dumps(dumped)  # inspectable = JSON-ready
    assert [o["agent"] for o in dumped["agent_outputs"]] == ["ProductSearch", "WebSearch"]
    assert sorted(dumped["graph"]["edges"]) == [["t1", "t3"], ["t2", "t3"]]
    assert dumped["subagent_context"] == {"Guider": {"slots": {"budget": 80}}}


def test_graph_versions():
    mem = Memory()
    g1 = nx.DiGraph()
    g1.add_node("a", type="ProductSearch")
    g2 = nx.DiGraph([("a", "b")])
    assert mem.save_graph("s", g1) == 1
    assert mem.save_graph("s", g2) == 2
    assert list(mem.load_graph("s").edges()) == [("a", "b")]
    assert mem.load_graph("s", version=1).nodes["a"]["type"] == "ProductSearch"
    with pytest.raises(KeyError, match="no task graph"):
        mem.load_graph("unknown")


def test_reflection_kb_similarity_order():
    mem = Memory()
    mem.record_failure("comparison", "sony vs bose headphones", "low relevance", score=0.2, remedy="add_web_search")
    mem.record_failure("comparison", "iphone vs galaxy phone", "low satisfaction", score=0.3)
    mem.record_failure("simple", "sony headphones", "other type")
    cases = mem.similar_failures("comparison", "bose vs sony wireless headphones")
    assert [c.query for c in cases] == ["sony vs bose headphones", "iphone vs galaxy phone"]
    # hand-worked Jaccard: {sony, vs, bose, headphones} vs {bose, vs, sony, wireless, headphones} = 4/5
    assert cases[0].similarity == pytest.approx(0.8)
    assert cases[0].remedy == "add_web_search"
    assert mem.similar_failures("negation") == []


def test_file_database_persists(tmp_path):
    path = tmp_path / "mem.sqlite"
    mem = Memory(path)
    mem.append_output("Decider", "s9", {"advice": "buy it"})
    mem.close()
    # a real SQLite file, readable without rl_shop
    rows = sqlite3.connect(path).execute("SELECT agent, payload_json FROM agent_outputs").fetchall()
    assert rows == [("Decider", '{"advice": "buy it"}')]
    assert Memory(path).outputs("s9")[0]["payload"] == {"advice": "buy it"}


def test_concurrent_writes_from_threads():
    mem = Memory()

    def worker(k: int) -> None:
        for i in range(50):
            mem.append_output("ProductSearch", "s", {"k": k, "i": i})

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(mem.outputs("s")) == 200


def test_non_json_payload_is_a_clear_error():
    mem = Memory()
    with pytest.raises(ValueError, match="JSON-serializable"):
        mem.append_output("X", "s", {"obj": object()})


def test_from_config_and_bad_config(tmp_path):
    mem = Memory.from_config({"path": ":memory:", "user_history_limit": 2})
    for i in range(4):
        mem.add_user_event("u", "q", {"i": i})
    assert len(mem.user_history("u")) == 2
    with pytest.raises(AgentConfigError, match="user_history_limit"):
        Memory.from_config({"path": ":memory:", "user_history_limit": 0})
    mem2 = Memory.from_config()  # the shipped config parses
    assert mem2.config.user_history_limit >= 1
