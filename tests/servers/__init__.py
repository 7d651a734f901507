"""Local wire-protocol servers for tests: real HTTP on 127.0.0.1, real SSE, scriptable faults.

    from servers import OpenAIServer, AnthropicServer, Fault

(`tests/` is on sys.path under pytest's default rootdir-relative import mode.)
"""

from .anthropic_server import AnthropicServer
from .base import FakeAPIServer, Fault, LoggedRequest
from .openai_server import OpenAIServer
from .toy_model import complete, count_tokens, echo_responder, tokens

__all__ = [
    "AnthropicServer",
    "Fault",
    "FakeAPIServer",
    "LoggedRequest",
    "OpenAIServer",
    "complete",
    "count_tokens",
    "echo_responder",
    "tokens",
]
