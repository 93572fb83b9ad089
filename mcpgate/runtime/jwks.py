"""JWKS key sources for JWT identity: a file read at start, or a URL fetched at start and refreshed.

Implements `mcpgate.identity.keys.KeySource`. `keys_for` never blocks: an unknown `kid` (a key rotated in
at the issuer) wakes the background refresher, at most once per `min_refresh_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

from mcpgate.errors import ConfigError
from mcpgate.identity.keys import KeySet, VerifyKey
from mcpgate.identity.settings import IdentityConfig

__all__ = ["JwksSource", "jwks_source_for"]

log = logging.getLogger("mcpgate.jwks")
MAX_JWKS_BYTES = 1024 * 1024


class JwksSource:
    """Public keys for JWT verification; swap-on-refresh, so readers always see one whole key set."""

    def __init__(self, *, url: str | None = None, path: str | None = None, refresh_s: float = 300.0,
                 min_refresh_s: float = 30.0, timeout_s: float = 5.0,
                 client: httpx.AsyncClient | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.url, self.path = url, path
        self.refresh_s, self.min_refresh_s, self.timeout_s = refresh_s, min_refresh_s, timeout_s
        self._keys = KeySet(())
        self._client = client
        self._own_client = client is None
        self._monotonic = monotonic
        self._last_kick = float("-inf")
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self.fetches = 0
        self.errors = 0
        self.last_error: str | None = None

    @classmethod
    def from_file(cls, path: str) -> JwksSource:
        """Keys from a JWKS JSON file, read now (a bad file refuses start-up with `ConfigError`)."""
        src = cls(path=path)
        src.reload_file()
        return src

    @classmethod
    def from_url(cls, url: str, refresh_s: float = 300.0, *, min_refresh_s: float = 30.0,
                 timeout_s: float = 5.0, client: httpx.AsyncClient | None = None) -> JwksSource:
        """Keys from a JWKS URL; call `await start()` to fetch them and begin refreshing."""
        return cls(url=url, refresh_s=refresh_s, min_refresh_s=min_refresh_s, timeout_s=timeout_s,
                   client=client)

    # -- KeySource -----------------------------------------------------------------------------------

    @property
    def generation(self) -> int:
        return self._keys.generation

    def keys_for(self, kid: str | None) -> Sequence[VerifyKey]:
        keys = self._keys.keys_for(kid)
        if not keys and kid is not None and self.url is not None:
            self._kick()
        return keys

    # -- loading -------------------------------------------------------------------------------------

    def reload_file(self) -> None:
        assert self.path is not None
        try:
            doc = json.loads(Path(self.path).read_bytes())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read jwks: {exc}", file=self.path, path="identity.jwt.jwks_file") \
                from None
        self._swap(KeySet.from_jwks(doc, generation=self._keys.generation + 1, origin=self.path))

    async def refresh(self) -> bool:
        """Fetch the URL once; keep the current keys on any failure. True when new keys were installed."""
        assert self.url is not None
        client = self._client
        if client is None:
            client = self._client = httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False)
        self.fetches += 1
        try:
            resp = await client.get(self.url, headers={"accept": "application/json"})
            if resp.status_code != 200:
                raise ValueError(f"http status {resp.status_code}")
            if len(resp.content) > MAX_JWKS_BYTES:
                raise ValueError("jwks document is larger than 1 MiB")
            keys = KeySet.from_jwks(json.loads(resp.content), generation=self._keys.generation + 1,
                                    origin=self.url)
            if len(keys) == 0:
                raise ValueError("jwks document has no usable signing keys")
        except (httpx.HTTPError, ValueError, ConfigError) as exc:
            self.errors += 1
            self.last_error = str(exc)
            log.warning("jwks refresh from %s failed: %s", self.url, exc)
            return False
        self._swap(keys)
        return True

    async def start(self) -> None:
        """Fetch once (failure refuses start-up: no keys means no JWT caller could be verified), then
        refresh every `refresh_s` and whenever an unknown `kid` arrives."""
        if self.url is None:
            return
        if not await self.refresh():
            raise ConfigError(f"cannot fetch jwks from `{self.url}`: {self.last_error}",
                              path="identity.jwt.jwks_url")
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name="mcpgate-jwks-refresh")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.refresh_s)
            self._wake.clear()
            await self.refresh()

    def _kick(self) -> None:
        now = self._monotonic()
        if now - self._last_kick < self.min_refresh_s or self._wake is None or self._loop is None:
            return
        self._last_kick = now
        # Thread-safe: the resolver may run off the loop thread (e.g. in a test or an executor).
        self._loop.call_soon_threadsafe(self._wake.set)

    def _swap(self, keys: KeySet) -> None:
        self._keys = keys


def jwks_source_for(config: IdentityConfig) -> JwksSource | None:
    """The key source `identity.jwt` names (None without JWT). URL sources still need `await start()`."""
    jwt = config.jwt
    if jwt is None:
        return None
    if jwt.jwks_file is not None:
        return JwksSource.from_file(jwt.jwks_file)
    assert jwt.jwks_url is not None
    return JwksSource.from_url(jwt.jwks_url, refresh_s=jwt.jwks_refresh_s)
