"""OpenVINO devices: which are present, checking the one asked for, and what a failed load
on one means."""

from __future__ import annotations

from pathlib import Path

from ..errors import DeviceError, InvalidModelError, OptionError, OvchatError, reason
from ..modeldir import reexport_hint

DEFAULT_DEVICE = "CPU"
META_DEVICES = ("AUTO", "HETERO", "MULTI", "BATCH")


def available_devices() -> list[str]:
    import openvino as ov

    return list(ov.Core().available_devices)


def check_device(device: str) -> str:
    """Accept CPU, GPU, GPU.0, NPU, AUTO, ... only when present; else name those that are."""
    device = device.strip().upper()
    if not device:
        raise OptionError("device must not be empty", param="device")
    if device.split(":")[0] in META_DEVICES:
        return device
    present = available_devices()
    if device in present or any(d.split(".")[0] == device for d in present):
        return device
    raise DeviceError(
        f"device {device!r} is not present on this machine",
        f"available: {', '.join(present) or 'none'}",
        param="device",
        choices=present,
    )


def load_error(path: Path, e: RuntimeError) -> OvchatError:
    """OpenVINO refused to load an export: a property it does not take, or the files."""
    why = reason(e)
    if "property" in why.lower():
        return OptionError(
            f"OpenVINO refused a property: {why}",
            "check the OpenVINO properties passed",
            param="properties",
        )
    return InvalidModelError(f"OpenVINO could not load {path}: {why}", reexport_hint(path))
