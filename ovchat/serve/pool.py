"""Several models behind one server: the pool.

Each served model loads on first use (in a thread; requests to a model that is loading wait
for it); past `max_loaded` models in memory the least recently used idle one unloads, and
so does a model idle for `keep_alive` seconds. A model in use is never unloaded under a
request, so the limit can be passed for as long as every loaded model is busy. A model that
fails to load answers its own requests with an OpenAI-shaped 503 (and tries again after
`LOAD_RETRY_SECONDS`); the others go on serving. What the pool holds is published for
`ovchat ps` and `ovchat rm` (library/held.py).

Routes ask for `await pool.acquire(name, kind)` and give the model back with `release()`;
`ReleaseModels` gives back whatever a request still holds once its response has been sent
(a streamed answer ends long after its route returned).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from ..engine import Engine
from ..engine.embedder import Embedder
from ..engine.reranker import Reranker
from ..engine.transcriber import Transcriber
from ..library.held import Registration
from ..modeldir import KIND_ARTICLE, Kind, read_model_info
from .enginegone import engine_restarting
from .errors import APIError, echo
from .metrics import Metrics
from .served import KIND_DOES, KIND_ROUTES, LOAD_FAILURES, Served
from .settings import ModelSpec, ServerSettings

log = logging.getLogger("ovchat.serve")
LOAD_RETRY_SECONDS = 30.0  # a model that failed to load is tried again after this long
SWEEP_SECONDS = 1.0  # how often idle models are checked against keep_alive
SCOPE_KEY = "ovchat_models"  # the models a request holds, in its ASGI scope


class ModelPool:
    """The models one server serves (the first is the default), loaded as they are asked for."""

    def __init__(
        self, settings: ServerSettings, metrics: Metrics, engine: Engine | None = None
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.served: list[Served] = []
        if engine is not None:  # one model, loaded by the caller
            spec = ModelSpec(engine.info.name, engine.info.path, (engine.info.path.name,))
            self.served.append(
                Served(spec, engine.info, "loaded", engine, pinned=True, last_used=time.time())
            )
        else:  # none at all is allowed until start() (an app made for its OpenAPI document)
            specs = settings.models or self._single(settings)
            self.served = [Served(s, read_model_info(s.path)) for s in specs]
        self._names: dict[str, Served] = {}
        for names in ([(s.id, s) for s in self.served],  # ids win over other models' aliases
                      [(a, s) for s in self.served for a in s.spec.aliases]):  # fmt: skip
            for name, served in names:
                self._names.setdefault(name, served)
                self._names.setdefault(name.lower(), served)
        self.registration: Registration | None = None
        self.started = False  # the default model was loaded once: the server is ready
        self._sweeper: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None  # the server's, once started

    @staticmethod
    def _single(settings: ServerSettings) -> tuple[ModelSpec, ...]:
        if settings.model_dir is None:
            return ()
        info = read_model_info(settings.model_dir)
        return (ModelSpec(info.name, info.path, (info.path.name,)),)

    # -- finding and holding ----------------------------------------------------------------
    @property
    def default(self) -> Served:
        return self.served[0]

    def find(self, name: str | None) -> Served:
        """The served model `name` names (None: the default); else a 404."""
        if name is None:
            return self.default
        found = self._names.get(name) or self._names.get(name.lower())
        if found is None:
            served = ", ".join(f"'{s.id}'" for s in self.served)
            raise APIError(
                404,
                f"The model '{echo(name)}' does not exist; this server serves {served}.",
                param="model",
                code="model_not_found",
            )
        return found

    async def acquire(self, name: str | None, kind: Kind, scope: Scope | None = None) -> Any:
        """The loaded engine of `name` (loading it first, or waiting for its load); it stays
        loaded until `release()` — done by ReleaseModels for requests that pass `scope`."""
        s = self.find(name)
        if s.kind != kind and not (kind == "chat" and s.kind == "vision"):
            raise APIError(
                400,
                f"The model '{s.id}' is {KIND_ARTICLE[s.kind]} {s.kind} model: it "
                f"{KIND_DOES[s.kind]}; use it with {KIND_ROUTES[s.kind]}.",
                param="model",
                code="model_not_supported",
            )
        s.users += 1
        try:
            engine = await self._ready(s)
        except BaseException:
            s.users -= 1
            raise
        s.last_used = time.time()
        if scope is not None:
            scope.setdefault(SCOPE_KEY, []).append(s)
        return engine

    def release(self, s: Served) -> None:
        s.users -= 1
        s.last_used = time.time()
        if len(self._loaded()) > self.settings.max_loaded:
            task = asyncio.get_running_loop().create_task(self._make_room())
            self._tasks.add(task)  # held: the loop keeps only weak references to tasks
            task.add_done_callback(self._tasks.discard)

    def release_scope(self, scope: Scope) -> None:
        for s in scope.pop(SCOPE_KEY, []):
            self.release(s)

    # -- loading and unloading ----------------------------------------------------------------
    async def _ready(self, s: Served) -> Any:
        while True:
            if s.state == "loaded" and getattr(s.engine, "dead", False):
                self._engine_died(s, s.engine)  # before its reader thread said so
            if s.restarting:
                raise engine_restarting(s.id)
            if s.state == "loaded":
                return s.engine
            if s.state == "failed" and time.time() - s.failed_at < LOAD_RETRY_SECONDS:
                raise self._failure(s)
            if s.task is None:  # unloaded, or failed long enough ago: load it
                s.state = "loading"
                self._publish()
                s.task = asyncio.get_running_loop().create_task(self._load_task(s))
            # shielded: a client that leaves does not stop the load the others wait for
            await asyncio.shield(s.task)

    async def _load_task(self, s: Served) -> None:
        try:
            await self._make_room(keep=s)
            t0 = time.perf_counter()
            try:
                engine = await asyncio.to_thread(self.load, s)
            except Exception as e:
                s.state, s.failed_at = "failed", time.time()
                s.error = next(
                    (why for cls, why in LOAD_FAILURES.items() if isinstance(e, cls)),
                    f"loading failed ({type(e).__name__})",
                )
                log.error("model %s failed to load: %s", s.id, e)
                self.metrics.model_loads.labels(s.id, "failed").inc()
                return
            s.engine, s.state, s.error = engine, "loaded", None
            s.load_seconds = time.perf_counter() - t0
            self._watch(s, engine)
            self.metrics.model_loads.labels(s.id, "loaded").inc()
            self.metrics.model_load_seconds.labels(s.id).observe(s.load_seconds)
            log.info("model %s loaded in %.1f s", s.id, s.load_seconds)
        finally:
            s.task, s.restarting = None, False
            self._publish()

    def _watch(self, s: Served, engine: Any) -> None:
        """An engine process that dies (remote.py) is reported here, on the loop."""
        if hasattr(engine, "on_exit"):
            engine.on_exit = functools.partial(self._died_elsewhere, s, engine)

    def _died_elsewhere(self, s: Served, engine: Any) -> None:  # on the engine's reader thread
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._engine_died, s, engine)

    def _engine_died(self, s: Served, engine: Any) -> None:
        """Its answers in flight have ended with an error; new requests get a 503 while a
        new engine process loads."""
        if s.engine is not engine or s.state != "loaded":
            return  # already seen, or unloaded on purpose
        log.error("the engine process of model %s stopped; restarting it", s.id)
        self.metrics.model_unloads.labels(s.id, "crashed").inc()
        s.engine, s.state, s.restarting = None, "loading", True
        threading.Thread(target=engine.close, daemon=True).start()  # it is gone: quick
        s.task = asyncio.get_running_loop().create_task(self._load_task(s))
        self._publish()

    def load(self, s: Served) -> Any:
        """Load `s`'s engine now (blocking): the batching Engine for chat models (warmed up),
        an Embedder, a Reranker or a Transcriber for the other kinds."""
        st = self.settings
        if s.kind == "embedding":
            return Embedder(s.spec.path, device=st.device, properties=st.properties)
        if s.kind == "rerank":
            return Reranker(s.spec.path, device=st.device, properties=st.properties)
        if s.kind == "speech":
            return Transcriber(s.spec.path, device=st.device, properties=st.properties)
        return st.model_copy(update={"model_dir": s.spec.path}).load_engine()

    def preload(self) -> None:
        """Load the default model before serving (the CLI: a bad model is one line on stderr,
        not a server log). Raises the library's error."""
        s = self.default
        if s.state == "loaded":
            return
        t0 = time.perf_counter()
        s.engine, s.state = self.load(s), "loaded"
        s.load_seconds = time.perf_counter() - t0
        self._watch(s, s.engine)
        s.last_used = time.time()
        self.metrics.model_loads.labels(s.id, "loaded").inc()
        self.metrics.model_load_seconds.labels(s.id).observe(s.load_seconds)

    def _loaded(self) -> list[Served]:
        return [s for s in self.served if s.state in ("loaded", "loading")]

    async def _make_room(self, keep: Served | None = None) -> None:
        """Unload the least recently used idle models until the limit holds (a model that is
        loading counts as loaded)."""
        while len(self._loaded()) > max(self.settings.max_loaded, 1):
            idle = [s for s in self._loaded() if s.state == "loaded" and s.users == 0]
            idle = [s for s in idle if not s.pinned and s is not keep]
            if not idle:
                return  # every loaded model is busy: unload later, when one is released
            await self._unload(min(idle, key=lambda s: s.last_used), "lru")

    async def _unload(self, s: Served, why: str) -> None:
        engine, s.engine, s.state = s.engine, None, "unloaded"
        self.metrics.model_unloads.labels(s.id, why).inc()
        log.info("model %s unloaded (%s)", s.id, why)
        self._publish()
        # Closed (its step thread joined) off the loop, but freed on the loop's thread: an
        # OpenVINO pipeline freed by an executor thread crashed the process at exit now and
        # then (SIGSEGV in about 1 run of 6). At shutdown, both here.
        box = [engine]
        del engine
        if why == "shutdown":
            box[0].close()
        else:
            await asyncio.to_thread(lambda: box[0].close())
        box.clear()

    async def sweep(self) -> None:
        """keep_alive: unload models idle for longer than that (runs for the app's life); a
        model's own keep_alive (set by a request) wins over the server's, negative: never."""
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            now = time.time()
            for s in self.served:
                keep = s.keep_alive if s.keep_alive is not None else self.settings.keep_alive
                idle = s.state == "loaded" and s.users == 0 and not s.pinned
                if idle and keep is not None and keep >= 0 and now - s.last_used >= keep:
                    await self._unload(s, "keep_alive")

    def keep_alive(self, name: str | None, seconds: float | None) -> None:
        """An Ollama request's keep_alive for model `name`, as Ollama takes it: from this
        request on, the model is unloaded once idle that long (0: as soon as the request is
        done; negative: never; None: the server's --keep-alive again)."""
        s = self.find(name)
        s.keep_alive = seconds
        if seconds is not None and seconds >= 0:
            self._start_sweeper()

    def _start_sweeper(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self.sweep())

    def _failure(self, s: Served) -> APIError:
        return APIError(
            503,
            f"The model '{s.id}' could not be loaded: {s.error}. The server log has the "
            f"details; it is tried again {LOAD_RETRY_SECONDS:.0f} s after the failure.",
            param="model",
            code="model_load_failed",
        )

    # -- the server's life ----------------------------------------------------------------------
    async def start(self) -> None:
        """Publish what this server holds; load the default model (requests wait for it);
        start the keep-alive sweeper."""
        if not self.served:
            raise ValueError("ServerSettings.model_dir, .models or an engine is needed")
        self.registration = Registration()
        self._loop = asyncio.get_running_loop()
        self._publish()
        if self.settings.keep_alive is not None:
            self._start_sweeper()
        s = self.default
        s.users += 1  # held while loading: the sweeper and the LRU leave it alone
        try:
            await self._ready(s)
        except APIError as e:
            raise RuntimeError(f"the default model failed to load: {s.error}") from e
        finally:
            s.users -= 1
        self.started = True

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for s in self.served:
            if s.state == "loaded" and not s.pinned:
                await self._unload(s, "shutdown")
        if self.registration is not None:
            self.registration.close()

    def set_url(self, url: str) -> None:
        if self.registration is not None:
            self.registration.update(url=url)

    def _publish(self) -> None:
        self.metrics.models_loaded.set(sum(s.state == "loaded" for s in self.served))
        if self.registration is not None:
            self.registration.update([s.record() for s in self.served])

    # -- what the engines hold, for the metrics ------------------------------------------------
    def engines(self) -> list[Engine]:
        return [s.engine for s in self.served if s.state == "loaded" and s.kind == "chat"]

    def watch(self, fn: Callable[[Engine], float], combine: Callable[..., float]) -> float:
        values = [fn(e) for e in self.engines()]
        return float(combine(values)) if values else 0.0


class ReleaseModels:
    """ASGI middleware: once a response has been sent (a stream included), give back the
    models its request acquired."""

    def __init__(self, app: ASGIApp, pool: Callable[[], ModelPool]) -> None:
        self.app = app
        self.pool = pool

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            if scope.get(SCOPE_KEY):
                self.pool().release_scope(scope)
