"""What compression an export really got, read from its IR."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any


def weight_statistics(xml: Path) -> dict[str, Any]:
    """What compression was actually applied: weights per element type and int4 group sizes.

    Read from the IR itself (not from what was asked), counting the constants that feed
    MatMul/Gather weights.
    """
    import openvino as ov

    model = ov.Core().read_model(str(xml))
    by_type: Counter[str] = Counter()
    groups: Counter[str] = Counter()
    for op in model.get_ops():
        if op.get_type_name() != "Constant":
            continue
        et = op.get_output_element_type(0).get_type_name()
        shape = list(op.get_output_shape(0))
        n = 1
        for d in shape:
            n *= d
        if n < 1024:  # scales, zero points, small tensors
            continue
        by_type[et] += n
        if et in ("u4", "i4") and len(shape) == 3:
            groups[str(shape[2])] += n
    total = sum(by_type.values()) or 1
    return {
        "weights_by_type": dict(by_type),
        "share_by_type": {k: round(v / total, 4) for k, v in by_type.items()},
        "int4_group_sizes": dict(groups),
    }
