"""The policy the gateway enforces, or none (observer mode): one interface over `PolicyHolder` for the runtime."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from typing import Any

from mcpgate.policy import Policy
from mcpgate.runtime.policy_reload import PolicyHolder

ReloadCallback = Callable[[bool, str | None], None]


class PolicySource:
    """`current()` is read once per request; None means no policy is configured (observer mode)."""

    def __init__(self, holder: PolicyHolder | None) -> None:
        self.holder = holder
        self.reloads = 0
        self._callback: ReloadCallback | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_config(cls, section: Mapping[str, Any], *, base_dir: str | None = None) -> PolicySource:
        files = [str(f) for f in section.get("files") or []]
        if not files:
            return cls(None)
        if base_dir is not None:
            files = [f if os.path.isabs(f) else os.path.join(base_dir, f) for f in files]
        reload_cfg = section.get("reload") or {}
        source = cls(None)
        source.holder = PolicyHolder(files, watch=bool(reload_cfg.get("watch", True)),
                                     interval_s=float(reload_cfg.get("interval_s", 1.0)),
                                     on_reload=source._reloaded)
        return source

    def current(self) -> Policy | None:
        return self.holder.current if self.holder is not None else None

    @property
    def revision(self) -> str | None:
        return self.holder.revision if self.holder is not None else None

    @property
    def files(self) -> list[str]:
        return list(self.holder.files) if self.holder is not None else []

    @property
    def reload_errors(self) -> int:
        return self.holder.reload_errors if self.holder is not None else 0

    @property
    def last_error(self) -> str | None:
        err = self.holder.last_error if self.holder is not None else None
        return None if err is None else err.message

    @property
    def loaded_at(self) -> float | None:
        return self.holder.loaded_at if self.holder is not None else None

    def reload(self) -> None:
        """Reload off the event loop (compiling 10k rules takes a while); the swap is atomic."""
        if self.holder is not None:
            self.holder.reload_soon()

    def start_watching(self, callback: ReloadCallback) -> None:
        self._callback = callback
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        if self.holder is not None:
            self.holder.start()

    def stop_watching(self) -> None:
        if self.holder is not None:
            self.holder.stop()

    def _reloaded(self, ok: bool, revision: str) -> None:
        # Called from the watcher thread; metrics are only touched on the event loop.
        self.reloads += 1
        cb, loop = self._callback, self._loop
        if cb is None:
            return
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(cb, ok, revision)
        else:
            cb(ok, revision)
