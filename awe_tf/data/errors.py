"""The error raised wherever bad input enters: it names the file and, where known, the line."""

from __future__ import annotations


class DataFormatError(ValueError):
    """Malformed or inconsistent input data, with the file and line it was found at (or, for data
    given in memory, what it was given as and ``unit``: ``position``)."""

    def __init__(self, path, message: str, line: int | str | None = None, unit: str | None = None):
        where = f"{path}" if line is None else f"{path}, {unit} {line}" if unit else f"{path}:{line}"
        super().__init__(f"{where}: {message}")
        self.path = str(path)
        self.line = line
        self.message = message


FLOAT32_MAX = 3.4028234663852886e38
FLOAT32_TINY = 1.1754943508222875e-38  # float32's smallest normal: a weight below loses digits, then reads 0
BELOW_NORMAL = (f"below float32's smallest normal number, {FLOAT32_TINY:.3g} (a model keeps values as float32, where "
                "it loses its digits or reads 0)")  # what is wrong with a value other than 0 below FLOAT32_TINY


def check_finite(path, value: float, line: int | str | None, what: str = "value", unit: str | None = None,
                 normal: bool = True) -> float:
    """``value``, if it is finite and fits in float32 (the precision models train in): not beyond
    its range, nor (with ``normal``), other than 0, below its smallest normal number (where
    float32 loses its digits, and reads 0 further down)."""
    if value != value or value in (float("inf"), float("-inf")):
        raise DataFormatError(path, f"{what} is {value!r}; NaN and infinite values are not allowed", line, unit)
    if abs(value) > FLOAT32_MAX:
        raise DataFormatError(path, f"{what} is {value!r}, beyond float32's range (3.4e38)", line, unit)
    if normal and value and abs(value) < FLOAT32_TINY:
        raise DataFormatError(path, f"{what} is {value!r}, {BELOW_NORMAL}: scale the column up, or write 0", line,
                              unit)
    return value


def is_number(value) -> bool:
    """Whether ``value`` reads as a number (``float`` takes it: ``"2.5"``, ``"1e3"``, ``3``)."""
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def parse_float(path, text: str, line: int | None, what: str = "value", normal: bool = True) -> float:
    """``text`` as a number, checked as :func:`check_finite` checks it."""
    try:
        value = float(text)
    except ValueError:
        raise DataFormatError(path, f"{what} {text!r} is not a number", line) from None
    return check_finite(path, value, line, what, normal=normal)


def parse_int(path, text: str, line: int | None, what: str = "index") -> int:
    try:
        return int(text)
    except ValueError:
        raise DataFormatError(path, f"{what} {text!r} is not an integer", line) from None
