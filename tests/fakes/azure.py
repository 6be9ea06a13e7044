"""A fake Azure OpenAI resource, faithful to the wire: deployments in the path,
``api-version`` in the query, the ``api-key`` header, OpenAI's bodies with Azure's
``prompt_filter_results`` / ``content_filter_results``, a stream that opens with a
prompt-filter-only chunk (no choices), and Azure's error bodies (``DeploymentNotFound``,
401 ``Access denied``, 404 ``Resource not found`` without an api-version).

Unscripted chats answer ``"Hello from fake-azure"`` (or call the first tool when
``tool_choice`` requires one).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.fakes.openai import chunk, completion
from tests.fakes.server import FakeServer, Reply

UNDERLYING_MODEL = "gpt-4o-2024-08-06"
_SAFE = {"filtered": False, "severity": "safe"}
CONTENT_FILTER_RESULTS = {"hate": _SAFE, "self_harm": _SAFE, "sexual": _SAFE, "violence": _SAFE}
PROMPT_FILTER_RESULTS = [{"prompt_index": 0, "content_filter_results": CONTENT_FILTER_RESULTS}]


def azure_error(http_status: int, code: str, message: str, param: str | None = None,
                headers: dict[str, str] | None = None, **extra: Any) -> Reply:
    error: dict[str, Any] = {"code": code, "message": message, "param": param, "type": None,
                             **extra}
    return Reply(status=http_status, json={"error": error}, headers=headers or {})


def content_filter_error() -> Reply:
    """Azure's answer when the prompt itself is filtered."""
    return azure_error(
        400, "content_filter",
        "The response was filtered due to the prompt triggering Azure OpenAI's content "
        "management policy. Please modify your prompt and retry.",
        param="prompt", status=400,
        innererror={"code": "ResponsibleAIPolicyViolation", "content_filter_result": {
            **CONTENT_FILTER_RESULTS,
            "violence": {"filtered": True, "severity": "medium"}}})


def azure_completion(content: str | None = "Hello from fake-azure",
                     tool_calls: list[dict[str, Any]] | None = None,
                     finish_reason: str = "stop") -> dict[str, Any]:
    body = completion(UNDERLYING_MODEL, content, tool_calls, finish_reason)
    body["prompt_filter_results"] = PROMPT_FILTER_RESULTS
    body["choices"][0]["content_filter_results"] = CONTENT_FILTER_RESULTS
    return body


def azure_stream_events(words: list[str], finish_reason: str = "stop",
                        include_usage: bool = False) -> list[Any]:
    opening = {"choices": [], "created": 0, "id": "", "model": "", "object": "",
               "prompt_filter_results": PROMPT_FILTER_RESULTS}
    events: list[Any] = [opening, chunk(UNDERLYING_MODEL, {"role": "assistant", "content": ""},
                                        include_usage=include_usage)]
    for w in words:
        event = chunk(UNDERLYING_MODEL, {"content": w}, include_usage=include_usage)
        event["choices"][0]["content_filter_results"] = CONTENT_FILTER_RESULTS
        events.append(event)
    events.append(chunk(UNDERLYING_MODEL, {}, finish_reason, include_usage=include_usage))
    if include_usage:
        events.append(chunk(UNDERLYING_MODEL, {}, include_usage=True, usage={
            "prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}))
    events.append("[DONE]")
    return events


class FakeAzure(FakeServer):
    api_key = "azure-fake-key-0123456789abcdef"
    deployments = ("my-gpt4o-deployment", "my-embedding-deployment")

    def routes(self, app: web.Application) -> None:
        prefix = "/openai/deployments/{deployment}"
        app.router.add_post(prefix + "/chat/completions", self.chat)
        app.router.add_post(prefix + "/embeddings", self.embeddings)

    async def _refuse(self, request: web.Request) -> web.StreamResponse | None:
        """Azure's checks, in Azure's order: key, api-version, deployment."""
        if request.headers.get("api-key") != self.api_key:
            return await self.play(request, Reply(status=401, json={"error": {
                "code": "401",
                "message": "Access denied due to invalid subscription key or wrong API "
                           "endpoint. Make sure to provide a valid key for an active "
                           "subscription and use a correct regional API endpoint for your "
                           "resource."}}))
        if not request.query.get("api-version"):
            return await self.play(request, Reply(status=404, json={
                "error": {"code": "404", "message": "Resource not found"}}))
        if request.match_info["deployment"] not in self.deployments:
            return await self.play(request, azure_error(
                404, "DeploymentNotFound",
                "The API deployment for this resource does not exist. If you created the "
                "deployment within the last 5 minutes, please wait a moment and try again."))
        if self.replies:
            return await self.play(request, self.replies.popleft())
        return None

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        if (refused := await self._refuse(request)) is not None:
            return refused
        body = recorded.json
        texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
        size = body.get("dimensions", 3)
        data = [{"object": "embedding", "index": i, "embedding": [float(i + 1)] * size}
                for i in reversed(range(len(texts)))]
        return web.json_response({"object": "list", "data": data,
                                  "model": "text-embedding-3-small",
                                  "usage": {"prompt_tokens": 4, "total_tokens": 4}})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        if (refused := await self._refuse(request)) is not None:
            return refused
        body = recorded.json
        choice = body.get("tool_choice")
        if body.get("tools") and (choice == "required" or isinstance(choice, dict)):
            name = (choice["function"]["name"] if isinstance(choice, dict)
                    else body["tools"][0]["function"]["name"])
            call = {"id": "call_azure1", "type": "function",
                    "function": {"name": name, "arguments": '{"city": "Paris"}'}}
            if body.get("stream"):
                events = [
                    chunk(UNDERLYING_MODEL, {"role": "assistant", "content": None,
                                             "tool_calls": [{**call, "index": 0}]}),
                    chunk(UNDERLYING_MODEL, {}, "tool_calls"), "[DONE]",
                ]
                return await self.play(request, Reply(events=events))
            return await self.play(request, Reply(json=azure_completion(
                None, tool_calls=[call], finish_reason="tool_calls")))
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return await self.play(request, Reply(events=azure_stream_events(
                ["Hello", " from", " fake-azure"], include_usage=include_usage)))
        return await self.play(request, Reply(json=azure_completion()))
