"""Prometheus metrics, in a registry of the app's own (two apps in one process never mix)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Seconds: from a fast tiny model on a free machine to a big model on a busy one.
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
LOAD_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
TPOT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "ovchat_requests",
            "HTTP requests to /v1 by endpoint and status (499: client went away mid-answer)",
            ["endpoint", "status"],
            registry=r,
        )
        self.prompt_tokens = Counter("ovchat_prompt_tokens", "prompt tokens processed", registry=r)
        self.generated_tokens = Counter("ovchat_generated_tokens", "tokens generated", registry=r)
        self.ttft = Histogram(
            "ovchat_time_to_first_token_seconds",
            "from the request's arrival to its first token (queueing included)",
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.tpot = Histogram(
            "ovchat_time_per_output_token_seconds",
            "mean time between generated tokens, per request",
            buckets=TPOT_BUCKETS,
            registry=r,
        )
        self.constrained = Counter(
            "ovchat_constrained_requests",
            "requests whose answer is grammar-constrained, by kind (json_schema, regex, "
            "grammar, tools)",
            ["kind"],
            registry=r,
        )
        self.running = Gauge("ovchat_requests_running", "requests generating", registry=r)
        self.waiting = Gauge("ovchat_requests_waiting", "requests queued for a slot", registry=r)
        self.engine_active = Gauge(
            "ovchat_engine_sequences",
            "requests held by the batching engine (a cancelled one leaves at once)",
            registry=r,
        )
        self.kv_usage = Gauge(
            "ovchat_kv_cache_usage_ratio",
            "share of the KV-cache pool held by requests in the last step (blocks kept only "
            "for the prefix cache are not counted)",
            registry=r,
        )
        self.models_loaded = Gauge("ovchat_models_loaded", "models in memory", registry=r)
        self.model_loads = Counter(
            "ovchat_model_loads",
            "model loads by model and outcome (loaded, failed)",
            ["model", "outcome"],
            registry=r,
        )
        self.model_load_seconds = Histogram(
            "ovchat_model_load_seconds",
            "time to load a model (warm-up included), by model",
            ["model"],
            buckets=LOAD_BUCKETS,
            registry=r,
        )
        self.model_unloads = Counter(
            "ovchat_model_unloads",
            "model unloads by model and reason (lru, keep_alive, shutdown)",
            ["model", "reason"],
            registry=r,
        )
        self.embedded_tokens = Counter(
            "ovchat_embedded_tokens", "tokens embedded (/v1/embeddings)", registry=r
        )
        self.reranked_documents = Counter(
            "ovchat_reranked_documents", "documents scored (/v1/rerank)", registry=r
        )
        self.transcribed_seconds = Counter(
            "ovchat_transcribed_audio_seconds", "seconds of audio transcribed (/v1/audio/*)",
            registry=r,
        )  # fmt: skip

        self.kv_bytes = Gauge(
            "ovchat_kv_cache_bytes",
            "size of the KV-cache pool as the engine allocated it (--kv-cache-gb)",
            registry=r,
        )

    def watch_engine(
        self,
        active: Callable[[], float],
        kv_usage: Callable[[], float],
        kv_bytes: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self.engine_active.set_function(active)
        self.kv_usage.set_function(kv_usage)
        self.kv_bytes.set_function(kv_bytes)

    def render(self) -> bytes:
        return generate_latest(self.registry)
