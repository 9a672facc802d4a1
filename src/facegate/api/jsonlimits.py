"""JSON with limits: nesting, value count and number length are checked before objects exist.

``json.loads`` alone turns a 27 MB body of ``[{},{},…]`` into 9 million dicts (~730 MB), a body
nested 100,000 levels into a RecursionError and a 5,000-digit integer into a ValueError. No
request of this API needs any of that: every payload is one flat object of a dozen scalars. So a
scan over the raw bytes (C-speed regex; strings are skipped whole, never copied) counts containers,
commas and depth first and stops at the first limit crossed, and the parse that follows refuses
overlong numbers from its hooks. Memory for a refused body is the body itself, nothing more.
"""

from __future__ import annotations

import json
import re
from typing import Any

from facegate.errors import BadRequest

# The API's payloads are flat; a few levels are allowed for clients sending structured extras.
MAX_DEPTH = 32
# Values in the whole document (containers plus commas): a dozen are needed, extras are ignored.
MAX_VALUES = 1000
# Digits of one number: a threshold needs a handful; Python refuses ints of over 4,300 digits.
MAX_NUMBER_CHARS = 100

# A whole string (possessive: linear, no backtracking), else a lone quote (an unterminated
# string: the parse reports it), else a structural byte. Everything else is skipped in C.
_TOKENS = re.compile(rb'"(?:[^"\\]++|\\.)*+"|["\[\]{},]', re.DOTALL)
_QUOTE, _OPENERS, _CLOSERS, _COMMA = ord('"'), b"[{", b"]}", ord(",")


def loads_limited(
    body: bytes,
    *,
    max_depth: int = MAX_DEPTH,
    max_values: int = MAX_VALUES,
    max_number_chars: int = MAX_NUMBER_CHARS,
) -> Any:
    """``json.loads`` that raises :class:`BadRequest` for bodies over the limits or not JSON."""
    _check_structure(body, max_depth=max_depth, max_values=max_values)

    def number(text: str, convert: type[int] | type[float]) -> int | float:
        if len(text) > max_number_chars:
            raise BadRequest(
                f"the body holds a number of {len(text)} characters; at most "
                f"{max_number_chars} are accepted"
            )
        return convert(text)

    try:
        return json.loads(
            body,
            parse_int=lambda text: number(text, int),
            parse_float=lambda text: number(text, float),
        )
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON ({exc})") from exc
    except RecursionError as exc:  # the structure check makes this unreachable; kept as a net
        raise BadRequest(f"the body is nested more than {max_depth} levels deep") from exc


def _check_structure(body: bytes, *, max_depth: int, max_values: int) -> None:
    depth = values = 0
    for match in _TOKENS.finditer(body):
        start = match.start()
        byte = body[start]
        if byte == _QUOTE:
            if match.end() - start == 1:
                return  # unterminated string: invalid JSON, which the parse reports precisely
            continue
        if byte in _OPENERS:
            depth += 1
            if depth > max_depth:
                raise BadRequest(f"the body is nested more than {max_depth} levels deep")
        elif byte in _CLOSERS:
            depth -= 1
            continue
        values += 1
        if values > max_values:
            raise BadRequest(
                f"the body holds more than {max_values} JSON values; this API's requests are "
                "one flat object of a few fields"
            )
