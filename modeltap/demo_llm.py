"""A small OpenAI-compatible language-model server for demos and tests (no weights, no download).

``modeltap demo-llm`` answers like vLLM, TGI or Ollama do, with a deterministic toy "model":

- ``POST /v1/chat/completions`` (``messages``) and ``POST /v1/completions`` (``prompt``): one
  JSON document, or with ``"stream": true`` Server-Sent Events (``data: {...}`` chunks with
  ``choices[].delta.content`` / ``choices[].text``, ending in ``data: [DONE]``; ``usage`` in a
  last chunk when ``stream_options.include_usage`` is set, as OpenAI does).
- ``POST /api/chat`` and ``POST /api/generate``: Ollama's NDJSON stream (``"stream": false`` for
  one document), with ``done_reason``, ``prompt_eval_count`` and ``eval_count``.
- ``GET /health`` answers 200.

A token is a word (with its trailing space). The answer is drawn from a fixed vocabulary seeded by
the prompt, so equal prompts get equal answers; it is about half as long as the prompt (8 to 64
tokens) and stops at ``max_tokens`` (``finish_reason: "length"``). A prompt that asks about one of
:data:`REFUSED_TOPICS` gets a refusal instead, as a guarded model would: traffic whose prompts move
towards those topics shows refusals rising. ``--token-seconds`` spaces the streamed tokens and
``--first-token-seconds`` delays the first (the "prefill").
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import random
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

MODEL_NAME = "demo-llm"
REFUSED_TOPICS = ("password", "weapon", "malware", "exploit")
REFUSAL = "I'm sorry, but I can't help with that request."
_WORDS = (
    "the model answers with a short and plain reply that reads well enough for a demo of "
    "monitoring streamed tokens through a sidecar which captures every event and counts "
    "time to first token while prompts and answers may drift over the day"
)
VOCABULARY = tuple(_WORDS.split(" "))
log = logging.getLogger("modeltap.demo_llm")


@dataclass(frozen=True)
class Answer:
    tokens: list[str]
    finish_reason: str
    prompt_tokens: int


def count_tokens(text: str) -> int:
    """The toy tokenizer's count: words."""
    return len(text.split())


def answer(prompt: str, max_tokens: int | None) -> Answer:
    """The deterministic answer to ``prompt``."""
    prompt_tokens = count_tokens(prompt)
    lowered = prompt.lower()
    if any(topic in lowered for topic in REFUSED_TOPICS):
        words = REFUSAL.split()
    else:
        seed = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:8], "big")
        rng = random.Random(seed)
        n = min(64, max(8, prompt_tokens // 2))
        words = [rng.choice(VOCABULARY) for _ in range(n)]
        words[0] = words[0].capitalize()
        words[-1] += "."
    finish = "stop"
    if max_tokens is not None and 0 < max_tokens < len(words):
        words, finish = words[:max_tokens], "length"
    tokens = [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
    return Answer(tokens, finish, prompt_tokens)


def _prompt_of(doc: dict[str, Any]) -> str:
    messages = doc.get("messages")
    if isinstance(messages, list):
        parts = []
        for m in messages:
            content = m.get("content") if isinstance(m, dict) else None
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):  # content parts
                parts += [p.get("text", "") for p in content if isinstance(p, dict)]
        return "\n".join(parts)
    prompt = doc.get("prompt")
    if isinstance(prompt, list):
        return "\n".join(str(p) for p in prompt)
    return str(prompt or "")


class DemoLLM:
    def __init__(self, token_seconds: float, first_token_seconds: float) -> None:
        self.token_seconds = token_seconds
        self.first_token_seconds = first_token_seconds

    async def _read(self, request: web.Request) -> dict[str, Any]:
        try:
            doc = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            raise web.HTTPBadRequest(text='{"error": "the body is not JSON"}') from None
        if not isinstance(doc, dict):
            raise web.HTTPBadRequest(text='{"error": "the body is not a JSON object"}')
        return doc

    async def _pause(self, first: bool) -> None:
        delay = self.first_token_seconds if first else self.token_seconds
        if delay > 0:
            await asyncio.sleep(delay)

    async def openai(self, request: web.Request) -> web.StreamResponse:
        doc = await self._read(request)
        chat = request.path.endswith("/chat/completions")
        model = doc.get("model") if isinstance(doc.get("model"), str) else MODEL_NAME
        max_tokens = doc.get("max_completion_tokens", doc.get("max_tokens"))
        ans = answer(_prompt_of(doc), max_tokens if isinstance(max_tokens, int) else None)
        rid = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24]
        created = int(time.time())
        obj = "chat.completion" if chat else "text_completion"
        usage = {
            "prompt_tokens": ans.prompt_tokens,
            "completion_tokens": len(ans.tokens),
            "total_tokens": ans.prompt_tokens + len(ans.tokens),
        }
        if not doc.get("stream"):
            for i in range(len(ans.tokens)):
                await self._pause(i == 0)
            text = "".join(ans.tokens)
            choice: dict[str, Any] = {"index": 0, "finish_reason": ans.finish_reason}
            if chat:
                choice["message"] = {"role": "assistant", "content": text}
            else:
                choice["text"] = text
            body = {"id": rid, "object": obj, "created": created, "model": model,
                    "choices": [choice], "usage": usage}  # fmt: skip
            return web.Response(body=orjson.dumps(body), content_type="application/json")

        resp = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        chunk_obj = "chat.completion.chunk" if chat else "text_completion"
        include_usage = bool((doc.get("stream_options") or {}).get("include_usage"))

        async def send(choices: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> None:
            event = {"id": rid, "object": chunk_obj, "created": created, "model": model,
                     "choices": choices, **(extra or {})}  # fmt: skip
            await resp.write(b"data: " + orjson.dumps(event) + b"\n\n")

        if chat:
            await send([{"index": 0, "delta": {"role": "assistant", "content": ""},
                         "finish_reason": None}])  # fmt: skip
        for i, token in enumerate(ans.tokens):
            await self._pause(i == 0)
            last = i == len(ans.tokens) - 1
            reason = ans.finish_reason if last else None
            if chat:
                await send([{"index": 0, "delta": {"content": token}, "finish_reason": reason}])
            else:
                await send([{"index": 0, "text": token, "finish_reason": reason}])
        if include_usage:
            await send([], {"usage": usage})
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def ollama(self, request: web.Request) -> web.StreamResponse:
        doc = await self._read(request)
        chat = request.path.endswith("/chat")
        model = doc.get("model") if isinstance(doc.get("model"), str) else MODEL_NAME
        raw_options = doc.get("options")
        options: dict[str, Any] = raw_options if isinstance(raw_options, dict) else {}
        limit = options.get("num_predict")
        ans = answer(_prompt_of(doc), limit if isinstance(limit, int) else None)

        def line(text: str, done: bool) -> dict[str, Any]:
            out: dict[str, Any] = {
                "model": model,
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            if chat:
                out["message"] = {"role": "assistant", "content": text}
            else:
                out["response"] = text
            out["done"] = done
            if done:
                out.update(done_reason=ans.finish_reason, prompt_eval_count=ans.prompt_tokens,
                           eval_count=len(ans.tokens))  # fmt: skip
            return out

        if doc.get("stream") is False:
            for i in range(len(ans.tokens)):
                await self._pause(i == 0)
            body = orjson.dumps(line("".join(ans.tokens), True))
            return web.Response(body=body, content_type="application/json")
        resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i, token in enumerate(ans.tokens):
            await self._pause(i == 0)
            await resp.write(orjson.dumps(line(token, False)) + b"\n")
        await resp.write(orjson.dumps(line("", True)) + b"\n")
        await resp.write_eof()
        return resp


async def health(_request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def create_app(llm: DemoLLM) -> web.Application:
    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_post("/v1/chat/completions", llm.openai)
    app.router.add_post("/v1/completions", llm.openai)
    app.router.add_post("/api/chat", llm.ollama)
    app.router.add_post("/api/generate", llm.ollama)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modeltap demo-llm", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument(
        "--token-seconds", type=float, default=0.02, help="delay between streamed tokens"
    )
    parser.add_argument(
        "--first-token-seconds", type=float, default=0.1, help="delay before the first token"
    )
    args = parser.parse_args(argv)
    if args.token_seconds < 0 or args.first_token_seconds < 0:
        parser.error("delays must be >= 0")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    print(f"demo LLM server (OpenAI-compatible) on http://{args.host}:{args.port}", flush=True)
    llm = DemoLLM(args.token_seconds, args.first_token_seconds)
    web.run_app(create_app(llm), host=args.host, port=args.port, access_log=None, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
