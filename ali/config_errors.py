"""A config that fails the schema, said in one line: the key, the bad value and what is allowed.

Snakemake's own message dumps the whole schema; the Snakefile prints ``explain(error)`` first, so the
line a researcher needs is the first one they see.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from jsonschema import ValidationError

BOUNDS = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}


def dotted(path: Iterable) -> str:
    """``['mixture', 'train', 'epochs']`` -> ``mixture.train.epochs``; list indices as ``[i]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _allowed(error: ValidationError) -> str:
    """What the schema accepts at the failing key, in words."""
    rule, value = error.validator, error.validator_value
    if rule == "enum":
        return "one of " + ", ".join(repr(v) for v in value)
    if rule == "const":
        return f"exactly {value!r}"
    if rule == "type":
        return "of type " + (" or ".join(value) if isinstance(value, list) else value)
    if rule in BOUNDS:
        return f"a number {BOUNDS[rule]} {value}"
    if rule == "pattern":
        return f"a string matching {value}"
    if rule in ("minItems", "maxItems", "minLength", "maxLength"):
        return f"{rule} {value}"
    if rule == "uniqueItems":
        return "a list without repeats"
    return error.message


def one_line(error: ValidationError) -> str:
    """``config error: <key> = <value>: must be <allowed>`` (unknown and missing keys say so)."""
    where = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set(error.schema.get("properties", {}))
        unknown = sorted(k for k in error.instance if k not in known)
        keys = ", ".join(dotted([*where, k]) for k in unknown)
        return f"config error: unknown key {keys}; allowed here: {', '.join(sorted(known))}"
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [k for k in error.validator_value if k not in error.instance]
        return f"config error: missing key {', '.join(dotted([*where, k]) for k in missing)}"
    return f"config error: {dotted(where)} = {error.instance!r}: must be {_allowed(error)}{_number_hint(error)}"


def _number_hint(error: ValidationError) -> str:
    """A number that YAML read as a string: PyYAML follows YAML 1.1, where ``3e-4`` (no dot) is a string."""
    expected = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
    value = error.instance
    if error.validator != "type" or not {"number", "integer"} & set(expected) or not isinstance(value, str):
        return ""
    try:
        number = float(value)
    except ValueError:
        return ""
    if not math.isfinite(number):
        return ""
    mantissa, e, exponent = value.lower().partition("e")
    if e and "." not in mantissa:
        return f" (YAML reads {value} as a string: write {mantissa}.0e{exponent})"
    return f" (a quoted string: write {value} without quotes)"


def find_validation_error(exc: BaseException) -> ValidationError | None:
    """The schema error inside Snakemake's WorkflowError (its args, cause or context), if any."""
    seen = set()
    todo = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ValidationError):
            return e
        todo += [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
        todo += [c for c in (e.__cause__, e.__context__) if c is not None]
    return None


def explain(exc: BaseException) -> str | None:
    """One line for a failed config validation, or None when ``exc`` is not one."""
    error = find_validation_error(exc)
    return one_line(error) if error is not None else None
