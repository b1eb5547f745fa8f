"""Images in requests: where each is (`messages[0].content[1]`), its bytes from a data: URL
(or, only when the server allows it, an http(s) URL), and the 400s for what cannot be used.

Decoding and the size limits are the engine's (engine/images.py); the model takes the images
only if it is a vision-language model (engine/vision.py).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from ..engine.images import MAX_IMAGE_BYTES, MAX_IMAGES
from .errors import APIError

FETCH_TIMEOUT = 10.0  # seconds for one image URL, when fetching is allowed


@dataclass(frozen=True)
class RequestImages:
    sources: list[bytes]
    names: list[str]  # where each image is in the request


async def request_images(body: Any, eng: Any, allow_urls: bool) -> RequestImages | None:
    """The images `body` holds (None: none), fetched and ready for `eng.plan(images=...)`;
    an APIError (400) naming the part for an image the model or the server cannot take.
    URLs (when allowed) are fetched in worker threads, all at once: the event loop goes on
    serving meanwhile."""
    parts: list[tuple[str, str]] = body.image_parts() if hasattr(body, "image_parts") else []
    if not parts:
        return None
    first = parts[0][0]
    if not getattr(eng, "takes_images", False):  # VisionFront (engine/vision.py)
        raise APIError(
            400,
            f"{first}: the model '{eng.info.name}' is a text-only model: it does not take "
            "images (send them to a vision model; GET /v1/models lists each model's kind)",
            param=first,
            code="model_not_supported",
        )
    if len(parts) > MAX_IMAGES:
        where = parts[MAX_IMAGES][0]
        raise APIError(
            400,
            f"{where}: {len(parts)} images in one request; at most {MAX_IMAGES} are taken",
            param=where,
        )
    sources = await asyncio.gather(*(image_bytes(url, where, allow_urls) for where, url in parts))
    return RequestImages(list(sources), [where for where, _ in parts])


async def image_bytes(url: str, where: str, allow_urls: bool) -> bytes:
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "data":
        return _data_url(url, where)
    if scheme in ("http", "https"):
        if not allow_urls:
            raise APIError(
                400,
                f"{where}: this server does not fetch image URLs (fetching is off unless its "
                "operator allows it); send the image inline as a data: URL (base64)",
                param=where,
            )
        return await asyncio.to_thread(_fetch, url, where)  # urllib blocks
    raise APIError(
        400, f"{where}: an image URL must be a data: URL (or http(s) if allowed)", param=where
    )


def _data_url(url: str, where: str) -> bytes:
    head, sep, payload = url.partition(",")
    if not sep or not head.lower().endswith(";base64"):
        raise APIError(
            400, f"{where}: a data: URL must be base64 (data:image/png;base64,...)", param=where
        )
    if len(payload) * 3 // 4 > MAX_IMAGE_BYTES:  # refused before it is decoded
        raise APIError(
            400,
            f"{where}: the image is over {MAX_IMAGE_BYTES // 2**20} MB; send a smaller one",
            param=where,
        )
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise APIError(400, f"{where}: the data: URL is not valid base64", param=where) from None


def _fetch(url: str, where: str) -> bytes:
    """Fetch an image URL (only called when the server allows it), at most the byte limit."""
    req = urllib.request.Request(url, headers={"User-Agent": "ovchat"})
    try:
        with urllib.request.urlopen(req, timeout=FETCH_TIMEOUT) as r:
            data: bytes = r.read(MAX_IMAGE_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError) as e:
        why = getattr(e, "reason", None) or e
        raise APIError(
            400, f"{where}: the image URL could not be fetched ({why})", param=where
        ) from None
    if len(data) > MAX_IMAGE_BYTES:
        raise APIError(
            400,
            f"{where}: the image is over {MAX_IMAGE_BYTES // 2**20} MB; send a smaller one",
            param=where,
        )
    return data
