"""The engine: load an export once, plan requests, stream Chunks.

engine.py    Engine (LLMPipeline or ContinuousBatchingPipeline behind one primitive)
planner.py   prompt → token ids → checks → answer budget (every front end uses it)
sampling.py  GenerationOptions → genai's GenerationConfig
steploop.py  the continuous-batching step loop
remote.py    EngineClient: the batching Engine in a process of its own (the server's)
enginecore.py  that process: the Engine behind a pipe; wire.py: the messages on the pipe
streamer.py  token counting, incremental text, the channel between threads
runtime.py   OpenVINO properties: defaults, what the recipe calls for, prompt lookup
device.py    OpenVINO devices
types.py     Chunk, Completion, EngineStatus
vision.py    VisionEngine: the Engine with images (genai's VLMPipeline)
images.py    images decoded and checked against the stated limits
"""

from .device import DEFAULT_DEVICE, available_devices, check_device
from .engine import (
    CONVERSATION_PROPERTIES,
    DEFAULT_KV_CACHE_GB,
    DEFAULT_MAX_NUM_SEQS,
    DEFAULT_PREFILL_CHUNK,
    Engine,
)
from .planner import Plan, Planner, Prompt, check_messages
from .types import Chunk, Completion, EngineStatus, FinishReason, Message, Messages

__all__ = [
    "CONVERSATION_PROPERTIES",
    "DEFAULT_DEVICE",
    "DEFAULT_KV_CACHE_GB",
    "DEFAULT_MAX_NUM_SEQS",
    "DEFAULT_PREFILL_CHUNK",
    "Chunk",
    "Completion",
    "Engine",
    "EngineStatus",
    "FinishReason",
    "Message",
    "Messages",
    "Plan",
    "Planner",
    "Prompt",
    "available_devices",
    "check_device",
    "check_messages",
]
