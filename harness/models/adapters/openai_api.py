"""`openai:MODEL`: OpenAI's chat completions API through the official client (chat generation only;
no logprobs for loglikelihood scoring). Key from OPENAI_API_KEY; base URL from `base_url=` or
OPENAI_BASE_URL. Streams every answer so time to first token is measured."""

from __future__ import annotations

from typing import Any

from evalboard.models.adapters._hosted import HostedChatAdapter, StreamTimer, chat_messages, cut_at_stop
from evalboard.models.adapters.base import register_adapter
from evalboard.models.remote import RetryableError
from evalboard.requests import GenerateRequest, Response

MAX_API_STOPS = 4  # the API takes at most 4 stop sequences; the rest are applied client-side


def openai_request(model: str, request: GenerateRequest, sampling: bool = True) -> dict[str, Any]:
    """The chat.completions.create arguments for one request (streamed, with usage); `sampling`
    False leaves out temperature/top_p for models that refuse them."""
    params = request.params
    body: dict[str, Any] = {
        "model": model,
        "messages": [
            {"role": role, "content": content} for role, content in chat_messages(request.context)
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_completion_tokens": params.max_new_tokens,
    }
    if sampling:
        body["temperature"] = params.temperature
        if params.top_p != 1.0:  # sent only when set
            body["top_p"] = params.top_p
    if params.stop:
        body["stop"] = list(params.stop[:MAX_API_STOPS])
    return body


@register_adapter
class OpenAIAdapter(HostedChatAdapter[Any]):
    schemes = ("openai",)
    provider = "openai"
    provider_name = "OpenAI"
    key_env = "OPENAI_API_KEY"
    base_url_env = "OPENAI_BASE_URL"
    default_base_url = "https://api.openai.com/v1"

    def _client(self, api_key: str) -> Any:
        import openai

        # max_retries=0: the RemoteRunner is the only retry policy, so every retry is counted.
        return openai.AsyncOpenAI(
            api_key=api_key, base_url=self.base_url, max_retries=0, timeout=self.policy.timeout_s
        )

    async def _attempt(self, client: Any, request: GenerateRequest) -> Response:
        timer = StreamTimer()
        stream = await client.chat.completions.create(
            **openai_request(self.model, request, self.send_sampling)
        )
        parts: list[str] = []
        finish: str | None = None
        usage = None
        try:
            async for chunk in stream:
                if chunk.usage is not None:
                    usage = chunk.usage
                for choice in chunk.choices:
                    if choice.delta is not None and choice.delta.content:
                        timer.token()
                        parts.append(choice.delta.content)
                    if choice.finish_reason:
                        finish = choice.finish_reason
        finally:
            await stream.close()
        if finish is None or usage is None:
            # The connection closed cleanly but early: the answer may be cut short. Retry.
            raise RetryableError(
                "the stream ended before the answer was complete (truncated stream)"
            )
        input_tokens, output_tokens = usage.prompt_tokens or 0, usage.completion_tokens or 0
        return Response(
            text=cut_at_stop("".join(parts), request.params.stop),
            usage=timer.usage(input_tokens, output_tokens, self.price(input_tokens, output_tokens)),
        )
