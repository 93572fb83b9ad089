"""The policy snapshot the data plane reads per request, reloaded on file change or SIGHUP without downtime.

Start-up with an invalid policy raises `ConfigError` (refuse to start). On reload, the new files are compiled
completely before one reference assignment swaps them in; an invalid file keeps the last good policy, and is
logged with its location and counted. Watching is a poll of (mtime, size, inode) from a daemon thread: it
survives editors that replace files and Kubernetes ConfigMap symlink swaps, on every filesystem.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence

from mcpgate.errors import ConfigError
from mcpgate.policy import Policy, expand_paths, load_policy

__all__ = ["PolicyHolder"]

log = logging.getLogger("mcpgate.policy")

Fingerprint = tuple[tuple[str, int, int, int] | tuple[str], ...]


class PolicyHolder:
    """Holds the compiled policy in force. Read `.current` once per request; never cache it per session.

    `on_reload(ok, revision)` is called after every reload attempt (metrics hook it up).
    """

    def __init__(self, files: Sequence[str | os.PathLike[str]], *, watch: bool = True,
                 interval_s: float = 1.0, on_reload: Callable[[bool, str], None] | None = None,
                 loader: Callable[[Sequence[str]], Policy] = load_policy,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.files: tuple[str, ...] = tuple(os.fspath(f) for f in files)
        if not self.files:
            raise ConfigError("no policy files given")
        self.watch = watch
        self.interval_s = interval_s
        self._on_reload = on_reload
        self._loader = loader
        self._clock = wall_clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.reload_errors = 0
        self.last_error: ConfigError | None = None
        self._fingerprint = self._fingerprint_now()
        self.current: Policy = loader(list(self.files))  # ConfigError propagates: refuse to start
        self.loaded_at: float = wall_clock()
        log.info("policy loaded: revision %s, %d rules from %d file(s)", self.current.revision,
                 len(self.current.rules), len(self.current.files))

    @property
    def revision(self) -> str:
        return self.current.revision

    def reload(self) -> bool:
        """Compile the files again and swap them in. False (last good policy kept) if they are invalid.

        Blocking (file reads and compilation): from an event loop, prefer `reload_soon()`.
        """
        with self._lock:
            self._fingerprint = self._fingerprint_now()
            try:
                policy = self._loader(list(self.files))
            except ConfigError as e:
                self.reload_errors += 1
                self.last_error = e
                log.error("policy reload failed, keeping revision %s: %s", self.current.revision, e)
                self._notify(ok=False, revision=self.current.revision)
                return False
            except Exception as e:  # a bug must not take the last good policy down with it
                self.reload_errors += 1
                self.last_error = ConfigError(f"policy reload failed unexpectedly: {e!r}")
                log.exception("policy reload failed, keeping revision %s", self.current.revision)
                self._notify(ok=False, revision=self.current.revision)
                return False
            self.last_error = None
            if policy.revision != self.current.revision:
                self.current = policy  # one reference assignment: readers see old or new, never a mix
                self.loaded_at = self._clock()
                log.info("policy reloaded: revision %s, %d rules", policy.revision, len(policy.rules))
            self._notify(ok=True, revision=policy.revision)
            return True

    def reload_soon(self) -> None:
        """Ask the watcher thread to reload now (safe from a signal handler or the event loop)."""
        if self._thread is None or not self._thread.is_alive():
            threading.Thread(target=self.reload, name="mcpgate-policy-reload", daemon=True).start()
        else:
            self._wake.set()

    def poll(self) -> bool | None:
        """One watch step: reload if any file changed. None when nothing changed, else `reload()`'s result."""
        if self._fingerprint_now() == self._fingerprint:
            return None
        return self.reload()

    def start(self) -> None:
        """Start the watcher thread (no-op unless `watch`)."""
        if not self.watch or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="mcpgate-policy-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> PolicyHolder:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            woken = self._wake.wait(self.interval_s)
            if self._stop.is_set():
                return
            self._wake.clear()
            try:
                if woken:
                    self.reload()
                else:
                    self.poll()
            except Exception:  # keep watching whatever happens
                log.exception("policy watcher step failed")

    def _notify(self, *, ok: bool, revision: str) -> None:
        if self._on_reload is not None:
            try:
                self._on_reload(ok, revision)
            except Exception:
                log.exception("policy reload callback failed")

    def _fingerprint_now(self) -> Fingerprint:
        out: list[tuple[str, int, int, int] | tuple[str]] = []
        for path in expand_paths(self.files):
            try:
                st = os.stat(path)
            except OSError:
                out.append((path,))
                continue
            out.append((path, st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(out)
