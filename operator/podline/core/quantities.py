"""CPU and memory values: Drone's spellings to Kubernetes quantities, and their size for comparison.

Drone writes CPU as integer millicores and memory as bytes or ``"512MiB"``; Kubernetes wants quantities
(``"500m"``, ``"512Mi"``). This small parser exists so the core need not import the Kubernetes client
(its ``utils.quantity`` pulls in the whole client package); it accepts exactly the quantity grammar.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_SUFFIX = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
_DRONE_UNITS = {
    "KiB": "Ki",
    "MiB": "Mi",
    "GiB": "Gi",
    "TiB": "Ti",
    "KB": "k",
    "MB": "M",
    "GB": "G",
    "TB": "T",
    "B": "",
}
_QUANTITY = re.compile(r"^([+]?[0-9.]+)(e[+-]?[0-9]+|[a-zA-Z]*)$")


def parse(resource: str, value: int | str) -> str:
    """Return the Kubernetes quantity for a Drone ``cpu``/``memory`` value; ValueError names the problem."""
    if isinstance(value, bool):
        raise ValueError(f"must be a number or a quantity, not {value!r}")  # noqa: TRY004 (callers catch ValueError)
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must not be negative")
        return f"{value}m" if resource == "cpu" else str(value)
    text = value.strip()
    for unit, kube in _DRONE_UNITS.items():
        if text.endswith(unit) and text[: -len(unit)].replace(".", "", 1).isdigit():
            text = text[: -len(unit)] + kube
            break
    amount(text)
    return text


def amount(quantity: str) -> Decimal:
    """The value of a Kubernetes quantity (cores or bytes), for comparing requests."""
    match = _QUANTITY.match(quantity)
    if not match:
        raise ValueError(f'"{quantity}" is not a quantity (examples: 500m, 2, 512Mi, 1G)')
    number, suffix = match.groups()
    try:
        base = Decimal(number)
    except InvalidOperation:
        raise ValueError(f'"{quantity}" is not a quantity') from None
    if suffix.startswith("e"):
        return base * (Decimal(10) ** int(suffix[1:]))
    if suffix not in _SUFFIX:
        raise ValueError(f'"{quantity}" has an unknown unit "{suffix}" (use m, k, M, G, Ki, Mi, Gi, …)')
    return base * _SUFFIX[suffix]
