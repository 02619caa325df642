"""rl_shop.llm: one chat-model interface with embedded, local-transformers and OpenAI backends.

Import-light: the heavy backends (torch, transformers, openai) load only when ``make_llm`` builds
one. See docs/llm.md.
"""

from rl_shop.llm.base import LLM, ChatStream
from rl_shop.llm.factory import load_llm_config, make_llm
from rl_shop.llm.metrics import GLOBAL as GLOBAL_METRICS
from rl_shop.llm.metrics import LLMMetrics
from rl_shop.llm.types import (
    ChatResult,
    InvalidMessagesError,
    LLMConfigError,
    LLMError,
    LLMUnavailableError,
    Message,
    ModelLoadError,
    StructuredResult,
)

__all__ = [
    "LLM",
    "ChatStream",
    "ChatResult",
    "StructuredResult",
    "Message",
    "LLMMetrics",
    "GLOBAL_METRICS",
    "LLMError",
    "LLMConfigError",
    "LLMUnavailableError",
    "ModelLoadError",
    "InvalidMessagesError",
    "make_llm",
    "load_llm_config",
]
