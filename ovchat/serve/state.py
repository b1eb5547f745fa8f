"""What one server holds: its settings, the engine (once loaded), admission and metrics.

Made by `create_app`, one per app: two apps in one process share nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..engine import Engine
from .admission import Slots, busy
from .errors import APIError, echo
from .metrics import Metrics
from .settings import ServerSettings


@dataclass
class ServerState:
    settings: ServerSettings
    metrics: Metrics = field(default_factory=Metrics)
    engine: Engine | None = None
    slots: Slots = field(init=False)
    stopping: bool = False  # shutting down: in-flight answers were ended, nobody is admitted

    def __post_init__(self) -> None:
        s = self.settings
        self.slots = Slots(s.max_running, s.max_waiting, self.metrics, lambda: self.stopping)

    def get_engine(self) -> Engine:
        if self.engine is None:
            raise busy(503, "the model is still loading", "model_loading")
        return self.engine

    def stop_generating(self) -> None:
        """Shutdown, first step: refuse new requests and end every answer in flight (each
        stream then closes cleanly with an error event and [DONE]; see streaming.py)."""
        self.stopping = True
        if self.engine is not None:
            self.engine.cancel_all()

    def check_model(self, name: str | None) -> str:
        """The served model's name if `name` asks for it (or is absent); else a 404."""
        eng = self.get_engine()
        served = eng.info.name
        # The served name is the export's name; its directory name is accepted as an alias.
        if name is None or name in (served, eng.info.path.name):
            return served
        raise APIError(
            404,
            f"The model '{echo(name)}' does not exist; this server serves '{served}'.",
            param="model",
            code="model_not_found",
        )

    def model_card(self) -> dict[str, Any]:
        eng = self.get_engine()
        created = int(eng.info.path.stat().st_mtime)
        return {"id": eng.info.name, "object": "model", "created": created, "owned_by": "ovchat"}
