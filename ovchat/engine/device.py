"""OpenVINO devices: which are present, and checking the one asked for."""

from __future__ import annotations

from ..errors import DeviceError, OptionError

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
