"""Test doubles that speak real wire formats: a fake Anthropic + OpenAI upstream and a very fast one.

``fake_upstream.FakeUpstream`` (aiohttp) records requests and misbehaves on demand; ``fast_upstream``
(raw asyncio + httptools) answers a fixed message as fast as it can, for benchmarks.
"""
