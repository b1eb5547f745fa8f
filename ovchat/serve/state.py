"""What one server holds: its settings, the engine (once loaded), admission and metrics.

Made by `create_app`, one per app: two apps in one process share nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..engine import Engine
from .admission import Slots
from .errors import APIError
from .metrics import Metrics
from .settings import ServerSettings


@dataclass
class ServerState:
    settings: ServerSettings
    metrics: Metrics = field(default_factory=Metrics)
    engine: Engine | None = None
    slots: Slots = field(init=False)

    def __post_init__(self) -> None:
        self.slots = Slots(self.settings.max_running, self.settings.max_waiting, self.metrics)

    def get_engine(self) -> Engine:
        if self.engine is None:
            raise APIError(503, "the model is still loading", code="model_loading")
        return self.engine

    def check_model(self, name: str | None) -> str:
        """The served model's name if `name` asks for it (or is absent); else a 404."""
        eng = self.get_engine()
        served = eng.info.name
        # The served name is the export's name; its directory name is accepted as an alias.
        if name is None or name in (served, eng.info.path.name):
            return served
        raise APIError(
            404,
            f"The model '{name}' does not exist; this server serves '{served}'.",
            param="model",
            code="model_not_found",
        )

    def model_card(self) -> dict[str, Any]:
        eng = self.get_engine()
        created = int(eng.info.path.stat().st_mtime)
        return {"id": eng.info.name, "object": "model", "created": created, "owned_by": "ovchat"}
