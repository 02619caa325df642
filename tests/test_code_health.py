"""The house rules that a tool can check: layers, cycles, one home for env ids, lint, format, types.

Each test runs the field's tool (import-linter, grimp, ruff, mypy) as a user would, so a failure
prints the tool's own report.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rl_shop", "envs")
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        found = shutil.which(name)
        assert found, f"{name} is not installed: pip install -e '.[dev]'"
        return found
    return str(path)


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False)


def test_imports_point_down_the_layers():
    """The layers contract of pyproject.toml ([tool.importlinter]), as docs/ARCHITECTURE.md draws it."""
    out = _run(_tool("lint-imports"))
    assert out.returncode == 0, out.stdout + out.stderr


def test_no_import_cycles():
    import grimp
    import networkx as nx

    graph = grimp.build_graph(*PACKAGES)
    edges = [(m, d) for m in graph.modules for d in graph.find_modules_directly_imported_by(m)]
    cycles = [c for c in nx.simple_cycles(nx.DiGraph(edges)) if len(c) > 1]
    assert cycles == [], f"import cycles: {cycles}"


def _docstring_nodes(tree: ast.AST) -> set[int]:
    docs = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docs.add(id(first.value))
    return docs


ENV_ID = re.compile(r"\b[A-Z][A-Za-z]+-v\d+\b")


def test_env_ids_are_spelled_only_in_the_spec():
    """Code reads ``envs.specs.<ENV>.id``: no string literal spells an id outside the spec, and
    no text under rl_shop/ (docstrings and comments included) names one; an env's own modules
    (``envs/<env>*.py``) may name their id in prose."""
    from envs.specs import SPECS

    own_prefixes = tuple(f"envs/{spec.config}" for spec in SPECS.values())
    names = "|".join(re.escape(spec.id.split("/")[-1].rsplit("-v", 1)[0]) for spec in SPECS.values())
    project_id = re.compile(rf"\b(?:{names})-v\d+\b")  # the project's envs (docs may show others)
    offenders = []
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            rel = path.relative_to(REPO_ROOT).as_posix()
            if rel == "envs/specs.py":
                continue
            text = path.read_text(encoding="utf-8")
            if not rel.startswith(own_prefixes):
                offenders += [f"{rel}: {m.group(0)} (in text)" for m in project_id.finditer(text)]
                continue
            tree = ast.parse(text)
            docs = _docstring_nodes(tree)
            for node in ast.walk(tree):
                literal = isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
                if literal and ENV_ID.search(node.value):
                    offenders.append(f"{rel}:{node.lineno}: {node.value[:60]!r}")
    assert offenders == [], "env ids spelled outside envs/specs.py:\n" + "\n".join(offenders)


def test_the_spec_names_every_registered_env():
    import gymnasium

    import envs
    from envs.specs import SPECS

    for spec in SPECS.values():
        assert gymnasium.spec(spec.id).entry_point == spec.entry_point
        for field in ("entry_point", "vector_entry_point", "featurizer", "heuristic", "torch_entry_point"):
            value = getattr(spec, field)
            if value is not None and field != "featurizer":
                assert callable(spec.load(field)), (spec.id, field)
        features = __import__(spec.featurizer, fromlist=["featurize"])
        assert callable(features.featurize) and callable(features.action_mask) and features.LAYOUT_VERSION
    assert set(envs.ENV_IDS) == set(SPECS)


def test_ruff_lint_and_format_are_clean():
    lint = _run(_tool("ruff"), "check", ".")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = _run(_tool("ruff"), "format", "--check", ".")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


@pytest.mark.slow
def test_mypy_is_clean():
    """``mypy`` over rl_shop/ and envs/ ([tool.mypy] in pyproject.toml); about a minute on 2 cores."""
    out = _run(_tool("mypy"))
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr


# Style: Any only where a library forces it. The modules on a library boundary and how many exact-Any
# annotations each may have; lower a number when an Any there gets a precise type, never raise one.
ANY_ALLOWED: dict[str, int] = {
    "rl_shop/agents/websearch/corpus.py": 1,  # the PyStemmer stemmer object (untyped)
    "rl_shop/catalog/index.py": 5,  # bm25s retriever, PyStemmer stemmer, sentence-transformers encoder
    "rl_shop/config_files.py": 1,  # OmegaConf node values
    "rl_shop/llm/constrained.py": 15,  # xgrammar compiler / matchers, transformers model and tokenizer
    "rl_shop/llm/embedded.py": 2,  # llama_cpp.Llama constructor kwargs and object
    "rl_shop/llm/hf_backend.py": 11,  # transformers model / tokenizer / generate kwargs, peft adapters
    "rl_shop/llm/llamacpp_backend.py": 15,  # llama_cpp module and Llama objects, xgrammar logits processors
    "rl_shop/llm/openai_backend.py": 3,  # openai client and its response objects
    "rl_shop/llm/prefix_cache.py": 1,  # llama_cpp.Llama
    "rl_shop/llm/serve.py": 2,  # llama_cpp.server module and its FastAPI app
    "rl_shop/policies/export.py": 12,  # SB3 models / policies, torch.onnx export, gymnasium spaces
    "rl_shop/research/sft_data.py": 1,  # HF datasets.Dataset
    "rl_shop/train/evaluation.py": 1,  # an SB3 (or tabular) model's predict()
    "rl_shop/train/torchrl_envs.py": 3,  # torchrl EnvBase kwargs, torch kernels behind spec entry points
    "rl_shop/train/torchrl_runner.py": 15,  # torchrl specs / collectors / loggers, tensordict data
    "rl_shop/train/vec_adapter.py": 1,  # SB3 VecEnv
}


def _is_any(annotation: ast.expr | None) -> bool:
    if isinstance(annotation, ast.Constant):  # a string annotation: "Any"
        return annotation.value == "Any"
    return (isinstance(annotation, ast.Name) and annotation.id == "Any") or (
        isinstance(annotation, ast.Attribute) and annotation.attr == "Any"
    )


def any_annotations() -> list[str]:
    """Parameters, returns and annotated assignments under rl_shop/ and envs/ annotated exactly ``Any``."""
    found = []
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            rel = path.relative_to(REPO_ROOT).as_posix()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    a = node.args
                    params = [*a.posonlyargs, *a.args, *a.kwonlyargs, *(x for x in (a.vararg, a.kwarg) if x)]
                    found += [f"{rel}:{p.lineno}: {node.name}({p.arg})" for p in params if _is_any(p.annotation)]
                    if _is_any(node.returns):
                        found.append(f"{rel}:{node.lineno}: {node.name} -> Any")
                elif isinstance(node, ast.AnnAssign) and _is_any(node.annotation):
                    found.append(f"{rel}:{node.lineno}: {ast.unparse(node.target)}: Any")
    return found


def test_any_only_on_library_boundaries():
    """Exact ``Any`` only in the modules of ``ANY_ALLOWED``, at most as many as each allows; elsewhere
    a precise type, ``object``, a Protocol, a TypeVar or a ``TYPE_CHECKING`` import."""
    allowed = ANY_ALLOWED
    by_module: dict[str, list[str]] = {}
    for hit in any_annotations():
        by_module.setdefault(hit.split(":", 1)[0], []).append(hit)
    over = {m: hits for m, hits in by_module.items() if len(hits) > allowed.get(m, 0)}
    assert not over, "exact Any outside a library boundary, or more than allowed; type these:\n" + "\n".join(
        f"{m} (allowed {allowed.get(m, 0)}):\n  " + "\n  ".join(hits) for m, hits in sorted(over.items())
    )


def test_yaml_files_are_read_by_the_one_loader():
    """Config files are read through ``rl_shop.config_files.read_config`` (OmegaConf, with the
    ``${cfg:...}`` resolver), not by ``yaml.*`` or ``OmegaConf.load`` by hand."""
    # tune_export parses a string value Optuna stored ("[64, 64]"), not a file.
    allowed = {"rl_shop/train/tune_export.py", "rl_shop/config_files.py"}
    offenders = []
    for package in (*PACKAGES, "experiments"):
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            rel = path.relative_to(REPO_ROOT).as_posix()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                call = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                if call and node.func.attr in ("safe_load", "load", "full_load", "unsafe_load"):
                    owner = node.func.value
                    by_hand = isinstance(owner, ast.Name) and owner.id in ("yaml", "OmegaConf")
                    if by_hand and rel not in allowed:
                        offenders.append(f"{rel}:{node.lineno}")
    assert offenders == [], "hand-written YAML loading (use rl_shop.config_files.read_config):\n" + "\n".join(offenders)


def test_config_defaults_live_in_the_yaml_files():
    """A default of a config model (a pydantic model named ``*Config`` or ``*Settings``) comes from
    its YAML file under configs/ (``defaults_from_yaml``); no model writes a default in code.
    The training settings have none at all: Hydra composes every key from configs/."""
    import importlib
    import pkgutil

    from pydantic import BaseModel

    import rl_shop
    from rl_shop.config_files import yaml_defaults_of

    offenders = []
    for info in pkgutil.walk_packages(rl_shop.__path__, "rl_shop."):
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            is_model = isinstance(obj, type) and issubclass(obj, BaseModel)
            if not is_model or obj.__module__ != module.__name__ or not obj.__name__.endswith(("Config", "Settings")):
                continue
            coded = sorted(
                n for n, f in obj.model_fields.items() if not f.is_required() and n not in yaml_defaults_of(obj)
            )
            if coded:
                offenders.append(f"{obj.__module__}.{obj.__name__}: {coded}")
    assert offenders == [], "config defaults written in code:\n" + "\n".join(offenders)


MAX_AGENT_FUNCTION_LINES = 60  # issue 15: a function of the agent layer reads at once


def test_agent_functions_read_at_once():
    """No function or method under rl_shop/agents is longer than ``MAX_AGENT_FUNCTION_LINES``
    (decorators excluded, docstring included)."""
    long = []
    for path in sorted((REPO_ROOT / "rl_shop" / "agents").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > MAX_AGENT_FUNCTION_LINES:
                    long.append(f"{path.relative_to(REPO_ROOT).as_posix()}:{node.lineno}: {node.name} ({n} lines)")
    assert long == [], "split these into named steps:\n" + "\n".join(long)
