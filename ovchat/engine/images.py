"""Images for vision-language models: decoded, checked against stated limits, kept as
uint8 RGB arrays (height x width x 3: plain values, they cross the pipe to an engine
process) and handed to openvino-genai as it wants them (`tensor`: [1, height, width, 3]).

Pillow decodes (PNG, JPEG, WebP, GIF's first frame, BMP); genai's own processor resizes and
normalises for the model. Only the checks and the conversion are written here.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import OptionError

MAX_IMAGE_BYTES = 20 * 2**20  # an encoded image (a file, a data: URL's payload)
MAX_IMAGE_PIXELS = 4096 * 4096  # width x height, decoded (16.8 megapixels)
MAX_IMAGES = 8  # per request (all messages together)
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")

ImageSource = bytes | str | Path | Any  # bytes, a file path, a PIL image or an HxWx3 array


class ImageError(OptionError):
    """An image that cannot be used: not an image, too large, too many, or not allowed."""


def check_count(n: int, param: str = "images") -> None:
    if n > MAX_IMAGES:
        raise ImageError(
            f"{n} images in one request; at most {MAX_IMAGES} are taken",
            "send fewer images",
            param=param,
        )


def decode(data: bytes, param: str = "image") -> Any:
    """Encoded image bytes → a PIL image in RGB, within the limits; ImageError naming `param`."""
    from PIL import Image, UnidentifiedImageError

    if len(data) > MAX_IMAGE_BYTES:
        raise ImageError(
            f"the image is {len(data) / 2**20:.1f} MB; at most {MAX_IMAGE_BYTES // 2**20} MB "
            "is taken",
            "send a smaller or more compressed image",
            param=param,
        )
    try:
        img = Image.open(io.BytesIO(data), formats=FORMATS)
        width, height = img.size
        if width * height > MAX_IMAGE_PIXELS:
            raise ImageError(
                f"the image is {width}x{height} pixels; at most {MAX_IMAGE_PIXELS:,} pixels "
                "(4096x4096) are taken",
                "scale it down first",
                param=param,
            )
        img.load()
    except ImageError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise ImageError(
            f"not an image ovchat can read ({type(e).__name__})",
            f"send one of {', '.join(f.lower() for f in FORMATS)}",
            param=param,
        ) from e
    return img.convert("RGB")


def load(source: ImageSource, param: str = "image") -> Any:
    """One image from bytes, a path, a PIL image or an array → a uint8 HxWx3 array."""
    import numpy as np

    if isinstance(source, (bytes, bytearray, memoryview)):
        img = decode(bytes(source), param)
    elif isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        try:
            size = path.stat().st_size
            if size > MAX_IMAGE_BYTES:  # refused before it is read
                raise ImageError(
                    f"{path} is {size / 2**20:.1f} MB; at most {MAX_IMAGE_BYTES // 2**20} MB "
                    "is taken",
                    "send a smaller or more compressed image",
                    param=param,
                )
            data = path.read_bytes()
        except OSError as e:
            raise ImageError(f"cannot read {path}: {e.strerror or e}", param=param) from e
        try:
            img = decode(data, param)
        except ImageError as e:
            raise ImageError(f"{path}: {e.message}", e.hint, param=param) from e
    elif hasattr(source, "convert") and hasattr(source, "size"):  # a PIL image
        img = source.convert("RGB")
    else:
        img = np.asarray(source)
        if img.ndim != 3 or img.shape[2] != 3:
            raise ImageError(
                f"an image array must be height x width x 3 (RGB), got shape {img.shape}",
                param=param,
            )
        if img.shape[0] * img.shape[1] > MAX_IMAGE_PIXELS:
            raise ImageError(f"the image has more than {MAX_IMAGE_PIXELS:,} pixels", param=param)
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def tensor(img: Any) -> Any:
    """A uint8 HxWx3 array → genai's image tensor [1, H, W, 3]."""
    import numpy as np
    import openvino as ov

    return ov.Tensor(np.ascontiguousarray(np.asarray(img, dtype=np.uint8))[None])


def load_all(
    sources: Sequence[ImageSource], param: str = "images", names: Sequence[str] | None = None
) -> list[Any]:
    """Every image, checked; errors name `param[i]`, or with `names` (where a request holds
    each image, e.g. "messages[0].content[1]") that name, also at the start of the message."""
    check_count(len(sources), names[min(len(names) - 1, MAX_IMAGES)] if names else param)
    if names is None:
        return [load(s, f"{param}[{i}]") for i, s in enumerate(sources)]
    out = []
    for source, name in zip(sources, names, strict=True):
        try:
            out.append(load(source, name))
        except ImageError as e:
            raise ImageError(f"{name}: {e.message}", e.hint, param=name) from e
    return out
