"""`anthropic:MODEL`: Anthropic's Messages API through the official client (chat generation only).
System messages go to the `system` parameter. Key from ANTHROPIC_API_KEY; base URL from `base_url=`
or ANTHROPIC_BASE_URL. Streams every answer so time to first token is measured."""

from __future__ import annotations

from typing import Any

from evalboard.models.adapters._hosted import HostedChatAdapter, StreamTimer, chat_messages, cut_at_stop
from evalboard.models.adapters.base import register_adapter
from evalboard.models.remote import NonRetryableError, RetryableError
from evalboard.requests import GenerateRequest, Response


def anthropic_request(
    model: str, request: GenerateRequest, sampling: bool = True
) -> dict[str, Any]:
    """The messages.create arguments for one request (streamed). Sampling parameters go in
    `extra_body`: anthropic SDK >= 1.0 dropped them from the signature, the API still takes them
    for the models that have them; `sampling` False leaves them out."""
    params = request.params
    system: list[str] = []
    messages: list[dict[str, str]] = []
    for role, content in chat_messages(request.context):
        if role in ("system", "developer"):
            system.append(content)
        else:
            messages.append({"role": role, "content": content})
    if not messages:
        raise NonRetryableError(
            "the prompt has only system messages; the Messages API needs a user turn"
        )
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": params.max_new_tokens,
        "messages": messages,
        "stream": True,
    }
    if system:
        body["system"] = "\n\n".join(system)
    if sampling:
        extra: dict[str, Any] = {"temperature": params.temperature}
        if params.top_p != 1.0:  # only when set: some models refuse temperature and top_p together
            extra["top_p"] = params.top_p
        if params.top_k > 0:
            extra["top_k"] = params.top_k
        body["extra_body"] = extra
    if params.stop:
        body["stop_sequences"] = list(params.stop)
    return body


@register_adapter
class AnthropicAdapter(HostedChatAdapter[Any]):
    schemes = ("anthropic",)
    provider = "anthropic"
    provider_name = "Anthropic"
    key_env = "ANTHROPIC_API_KEY"
    base_url_env = "ANTHROPIC_BASE_URL"
    default_base_url = "https://api.anthropic.com"

    def _client(self, api_key: str) -> Any:
        import anthropic

        # max_retries=0: the RemoteRunner is the only retry policy, so every retry is counted.
        return anthropic.AsyncAnthropic(
            api_key=api_key, base_url=self.base_url, max_retries=0, timeout=self.policy.timeout_s
        )

    async def _attempt(self, client: Any, request: GenerateRequest) -> Response:
        timer = StreamTimer()
        stream = await client.messages.create(
            **anthropic_request(self.model, request, self.send_sampling)
        )
        parts: list[str] = []
        input_tokens = output_tokens = 0
        finished = False
        try:
            async for event in stream:
                kind = event.type
                if kind == "message_start":
                    usage = event.message.usage
                    input_tokens = (
                        (usage.input_tokens or 0)
                        + (getattr(usage, "cache_creation_input_tokens", None) or 0)
                        + (getattr(usage, "cache_read_input_tokens", None) or 0)
                    )
                    output_tokens = usage.output_tokens or 0
                elif kind == "content_block_delta" and event.delta.type == "text_delta":
                    timer.token()
                    parts.append(event.delta.text)
                elif kind == "message_delta" and event.usage is not None:
                    output_tokens = event.usage.output_tokens or output_tokens  # cumulative
                elif kind == "message_stop":
                    finished = True
        finally:
            await stream.close()
        if not finished:
            raise RetryableError("the stream ended before message_stop (truncated stream)")
        return Response(
            text=cut_at_stop("".join(parts), request.params.stop),
            usage=timer.usage(input_tokens, output_tokens, self.price(input_tokens, output_tokens)),
        )
