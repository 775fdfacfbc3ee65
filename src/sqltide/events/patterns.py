"""Amazon EventBridge event patterns: validated once, compiled to closures, matched fast.

A rule's pattern is written in EventBridge's content-filtering language, so that patterns written
for EventBridge work here unchanged. :func:`compile_pattern` checks the whole pattern up front
and raises :class:`InvalidPattern` (an :class:`~sqltide.errors.UnprocessableEntity`, HTTP 422)
naming the offending part (``details={"path": "detail.state[0].prefix", "reason": ...}``);
:meth:`Pattern.matches` then answers for an event without re-reading the pattern.

Sources: the EventBridge user guide (event patterns, arrays, null values and empty strings,
content filtering, comparison operators, quotas); ``aws/event-ruler`` (the engine EventBridge
runs: ``JsonRuleCompiler``, ``ByteMachine``, ``ACFinder``, ``NameState``, ``WildcardParser``); and
the AWS-validated parity corpus of LocalStack (``tests/aws/services/events/event_pattern_templates``
with its snapshot of what the real service answered).

Matching rules implemented
--------------------------
Structure
    * A pattern is a non-empty JSON object mirroring the event's nesting. Every field it names
      must match (AND); fields it does not name are ignored. Empty objects are invalid.
    * A field's value is either an object (a nested pattern) or a non-empty array of values; the
      field matches when any value in the array matches (OR).
    * A value is a string, number, ``true``, ``false``, ``null`` or a one-key match expression
      (``{"prefix": ...}``). Arrays in arrays are invalid.
    * Where the event has an array, the pattern matches when any element matches ("non-empty
      intersection"); nested arrays are flattened. A nested pattern under an array is matched
      against one element at a time, so two fields never match from different elements of the
      same array (Event Ruler's "array consistency" of ``rulesForJSONEvent``).
    * A leaf is a string, number, boolean or null in the event. An object, an empty array or a
      missing field has no leaf: it matches nothing but ``{"exists": false}`` (and an
      ``anything-but`` never matches it).
    * ``$or`` (an array of at least two objects, at any object level) ORs its objects with the
      rest of the object they sit in, as Event Ruler does: the pattern is expanded into
      alternatives and the event matches when any alternative matches. If a ``$or`` is not an
      array of two or more objects, or one of its objects uses an operator name (``prefix``,
      ``numeric``...) as a field name, the whole pattern is read again with ``$or`` as an
      ordinary field name (Event Ruler's fallback to its legacy compiler) and is rejected only if
      that reading is invalid too.
    * A field named twice along the way to an alternative (through ``$or``, or a key repeated in
      the JSON text) takes the last value, as Event Ruler's overriding does.
    * An event that is not a JSON object matches nothing.
Values
    * Strings match exactly, case-sensitively. ``""`` matches only the empty string and ``null``
      only JSON null; they are not interchangeable. ``"300"`` never matches the number 300.
    * Numbers match numerically: ``300`` matches ``300.0`` (the real service does, see LocalStack's
      ``number_comparison_float``, although an older guide says otherwise). ``true``/``false``
      match only booleans; 1 is not ``true``.
Operators (only on leaves; names are case-sensitive)
    * ``prefix`` / ``suffix``: a string, or ``{"equals-ignore-case": str}``; strings only.
    * ``equals-ignore-case``: a string; compares ``str.lower()`` of both sides.
    * ``wildcard``: a string where ``*`` matches any run of characters, including none (Event
      Ruler's README; AWS's announcement: "zero, single, or multiple characters"); ``\\*`` is
      a literal ``*`` and ``\\\\`` a literal backslash; any other escape and two ``*`` in a row
      are invalid (``WildcardParser``). Strings only.
    * ``numeric``: ``["=", n]``, ``[">"|">="|"<"|"<=", n]`` or ``[">"|">=", lo, "<"|"<=", hi]`` with
      ``lo < hi``; JSON numbers only (never strings, booleans or null).
    * ``cidr``: ``"a.b.c.d/n"`` or an IPv6 block; matches strings holding an IP address in it.
    * ``exists``: ``true`` matches when the field has at least one leaf (null and ``""``
      included), ``false`` when it has none (missing, an object, an empty array).
    * ``anything-but``: a string, a number, a non-empty list of only strings or only numbers, or
      an object with one of ``prefix``, ``suffix`` (non-empty strings), ``equals-ignore-case`` or
      ``wildcard``, each a string or a list of strings. It matches every leaf that is not
      excluded, whatever its type: null, booleans, numbers against a string exclusion and so on
      (LocalStack's ``content_anything_but_string_null``, ``content_anything_prefix_int_value``);
      it does not match a missing field.
Limits
    * The pattern's JSON text is at most 2,048 characters (EventBridge's default quota; it can be
      raised to 4,096 there, here with ``max_length``). A pattern given as a dict is measured as
      compact JSON.
    * sqltide's own limits, which EventBridge leaves unpublished: 100 levels of nesting and
      1,000 alternatives after expanding ``$or``.

EventBridge behaviour deliberately not reproduced
-------------------------------------------------
    * Dotted keys: Event Ruler joins nested keys with ``.``, so ``{"a.b": [...]}`` also matches
      ``{"a": {"b": ...}}`` and the other way round. Its README says not to rely on it; keys here
      match literally at each level, which keeps array-consistent matching exact.
    * ``exists: false`` under an array of objects is decided per element (an element without the
      field satisfies it). Event Ruler decides it against every field consistent with the array
      elements matched so far in key order, so the two can differ when the absent field sorts
      before the fields that pin the element; the per-element reading does not depend on order.
    * Numeric limits: older guides cap numbers at +-1e9 or +-5e9 with six decimals, newer Event
      Ruler uses the whole double range. Any finite number is accepted and compared as a Python
      number.
    * Exact strings that look like IP addresses are compared as text; Event Ruler would compare
      them as addresses (``2001:db8::1`` equal to ``2001:0db8:0:0::1``).
    * The wildcard "Rule is too complex" check: its threshold is not published, and wildcards here
      never backtrack (one left-to-right search per literal piece), so they cannot slow other
      rules down.
    * ``{"anything-but": {"prefix": []}}`` and the other empty lists inside ``anything-but`` are
      rejected; Event Ruler accepts them and excludes nothing.
    * Event Ruler's undocumented ``{"exact": ...}`` operator is not supported (EventBridge does not
      document it); it is an unknown operator here.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Callable
from typing import Any, NoReturn

from ..errors import InvalidPattern

__all__ = [
    "MAX_ALTERNATIVES",
    "MAX_DEPTH",
    "MAX_PATTERN_LENGTH",
    "InvalidPattern",
    "Pattern",
    "compile_pattern",
]

#: EventBridge's default limit on the length of an event pattern, in characters.
MAX_PATTERN_LENGTH = 2048
#: sqltide's limit on how deeply a pattern may nest objects.
MAX_DEPTH = 100
#: sqltide's limit on the alternatives ``$or`` may expand a pattern into.
MAX_ALTERNATIVES = 1000

_OR = "$or"
#: Names Event Ruler refuses as field names inside ``$or`` objects (``Constants.java``).
_RESERVED_IN_OR = frozenset(
    [
        *("exact", "equals-ignore-case", "prefix", "suffix", "anything-but", "exists"),
        *("wildcard", "numeric", "cidr", "=", "<", "<=", ">", ">=", "regex", "not-wildcard"),
        *("not-equals-ignore-case", "date-after", "date-on-or-after", "date-before"),
        *("date-on-or-before", "in-date-range", "ip-address-in-range", "ip-address-not-in-range"),
    ]
)
_PLAIN_KEY = re.compile(r"[^.\[\]\"\s]+")


class _OrNotUsable(InvalidPattern):
    """A ``$or`` that Event Ruler would read as an ordinary field name instead."""


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


#: What ``dict.get`` gives for a field the event does not have.
_MISSING = _Missing()

Test = Callable[[Any], bool]


def _true(_: Any) -> bool:
    return True


def _false(_: Any) -> bool:
    return False


# --------------------------------------------------------------------------------------------
# The compiled pattern


class Pattern:
    """A compiled event pattern; build one with :func:`compile_pattern`.

    Patterns are equal when their JSON text is; :attr:`json` keeps the field order, which
    matters when ``$or`` overrides a field.
    """

    __slots__ = ("_json", "_match")

    def __init__(self, text: str, match: Test) -> None:
        self._json = text
        self._match = match

    def matches(self, event: Any) -> bool:
        """Whether ``event`` (a parsed JSON object) matches; never raises for JSON values."""
        return self._match(event)

    @property
    def json(self) -> str:
        """The pattern as compact JSON text."""
        return self._json

    @property
    def source(self) -> dict[str, Any]:
        """The pattern as a fresh JSON object."""
        source: dict[str, Any] = json.loads(self._json)
        return source

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pattern) and other._json == self._json

    def __hash__(self) -> int:
        return hash(self._json)

    def __repr__(self) -> str:
        return f"Pattern({self._json})"


def compile_pattern(
    pattern: dict[str, Any] | str, *, max_length: int = MAX_PATTERN_LENGTH
) -> Pattern:
    """Validate an EventBridge event pattern (a JSON object or its text) and compile it.

    Raises :class:`InvalidPattern` with ``details={"path", "reason"}`` for the first invalid
    part found; ``path`` is ``""`` for the pattern as a whole.

    >>> p = compile_pattern({"source": ["aws.redshift-data"], "detail": {"state": ["FAILED"]}})
    >>> p.matches({"source": "aws.redshift-data", "detail": {"state": "FAILED", "rows": 0}})
    True
    """
    source, text = _load(pattern, max_length)
    try:
        alternatives = _expand(source, legacy_or=False)
    except _OrNotUsable as exc:
        try:
            alternatives = _expand(source, legacy_or=True)
        except InvalidPattern:
            raise InvalidPattern(exc.message, details=exc.details) from None
    return Pattern(text, _compile_alternatives(alternatives))


def _load(pattern: Any, max_length: int) -> tuple[dict[str, Any], str]:
    """The pattern as an object and as compact JSON text, checking JSON syntax and length."""
    if isinstance(pattern, str):
        _check_length(len(pattern), max_length)
        try:
            source = json.loads(pattern, parse_constant=_reject_constant)
        except RecursionError:
            _fail("", f"Filter nests more than {MAX_DEPTH} levels")
        except ValueError as exc:
            _fail("", f"Filter is not valid JSON: {exc}")
        if not isinstance(source, dict):
            _fail("", "Filter is not an object")
        _check_json(source, "", 0)
        return source, _dumps(source)
    if not isinstance(pattern, dict):
        _fail("", "Filter is not an object")
    _check_json(pattern, "", 0)
    text = _dumps(pattern)
    _check_length(len(text), max_length)
    return json.loads(text), text


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _check_length(length: int, max_length: int) -> None:
    if length > max_length:
        _fail("", f"Event pattern is {length} characters long; the limit is {max_length}")


def _check_json(value: Any, path: str, depth: int) -> None:
    """Reject what JSON cannot say (non-string keys, sets, NaN...) in a pattern given as a dict."""
    if depth > MAX_DEPTH:
        _fail(path, f"Filter nests more than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                _fail(path, f"Field names must be strings, not {key!r}")
            _check_json(item, _join(path, key), depth + 1)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_json(item, f"{path}[{i}]", depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        _fail(path, f"{value} is not a JSON number")
    elif value is not None and not isinstance(value, str | int | float | bool):
        _fail(path, f"{type(value).__name__} is not a JSON value")


def _join(path: str, key: str) -> str:
    segment = key if _PLAIN_KEY.fullmatch(key) else f"[{json.dumps(key, ensure_ascii=False)}]"
    if not path or segment.startswith("["):
        return f"{path}{segment}"
    return f"{path}.{segment}"


def _fail(path: str, reason: str, cls: type[InvalidPattern] = InvalidPattern) -> NoReturn:
    where = f" at {path}" if path else ""
    raise cls(
        f"Event pattern is not valid{where}: {reason}", details={"path": path, "reason": reason}
    )


# --------------------------------------------------------------------------------------------
# Structure: objects, arrays and $or, expanded into alternatives (as Event Ruler's compiler does)

#: One alternative: the path of every leaf field (a tuple of keys) and what matches there.
Alternative = dict[tuple[str, ...], "_Leaf"]


def _expand(source: dict[str, Any], *, legacy_or: bool) -> list[Alternative]:
    if not source:
        _fail("", "Empty objects are not allowed")
    return _object([{}], (), source, "", legacy_or=legacy_or, in_or=False)


def _object(
    alternatives: list[Alternative],
    keys: tuple[str, ...],
    obj: dict[str, Any],
    path: str,
    *,
    legacy_or: bool,
    in_or: bool,
) -> list[Alternative]:
    if len(keys) >= MAX_DEPTH:
        _fail(path, f"Filter nests more than {MAX_DEPTH} levels")
    if not obj:
        _fail(path, "Empty objects are not allowed")
    for key, value in obj.items():
        here = _join(path, key)
        if key == _OR and not legacy_or:
            alternatives = _or(alternatives, keys, value, here)
            continue
        if in_or and key in _RESERVED_IN_OR:
            _fail(here, f"{key} is a reserved name that cannot be a field inside $or", _OrNotUsable)
        if isinstance(value, dict):
            alternatives = _object(
                alternatives, (*keys, key), value, here, legacy_or=legacy_or, in_or=in_or
            )
        elif isinstance(value, list | tuple):
            leaf = _values(value, here)
            for alternative in alternatives:
                alternative[(*keys, key)] = leaf
        else:
            _fail(here, f'"{key}" must be an object or an array')
    return alternatives


def _or(
    alternatives: list[Alternative], keys: tuple[str, ...], value: Any, path: str
) -> list[Alternative]:
    if not isinstance(value, list | tuple):
        _fail(path, "$or must be followed by an array", _OrNotUsable)
    expanded: list[Alternative] = []
    for i, branch in enumerate(value):
        if not isinstance(branch, dict):
            _fail(f"{path}[{i}]", "Only objects are allowed in a $or array", _OrNotUsable)
        copies = [dict(alternative) for alternative in alternatives]
        expanded += _object(copies, keys, branch, f"{path}[{i}]", legacy_or=False, in_or=True)
        if len(expanded) > MAX_ALTERNATIVES:
            _fail(path, f"$or expands the pattern into more than {MAX_ALTERNATIVES} alternatives")
    if len(value) < 2:
        _fail(path, "$or needs at least 2 objects", _OrNotUsable)
    return expanded


# --------------------------------------------------------------------------------------------
# Leaves: the values in one array, gathered by the type of event value they can match


class _Leaf:
    """What one array of pattern values accepts, gathered per JSON type of the event value."""

    __slots__ = (
        "any_null",
        "any_number",
        "any_other",
        "any_string",
        "exists_false",
        "exists_true",
        "false_ok",
        "lower_exact",
        "lower_prefixes",
        "lower_suffixes",
        "null_ok",
        "number_exact",
        "number_tests",
        "prefixes",
        "string_exact",
        "string_tests",
        "suffixes",
        "true_ok",
    )

    def __init__(self) -> None:
        self.exists_true = self.exists_false = False
        self.null_ok = self.true_ok = self.false_ok = False
        #: Set by ``anything-but``: every value of that type that is not excluded matches.
        self.any_string = self.any_number = self.any_null = self.any_other = False
        self.string_exact: set[str] = set()
        self.lower_exact: set[str] = set()
        self.prefixes: list[str] = []
        self.suffixes: list[str] = []
        self.lower_prefixes: list[str] = []
        self.lower_suffixes: list[str] = []
        self.string_tests: list[Test] = []
        self.number_exact: set[int | float] = set()
        self.number_tests: list[Test] = []


def _values(values: list[Any] | tuple[Any, ...], path: str) -> _Leaf:
    if not values:
        _fail(path, "Empty arrays are not allowed")
    leaf = _Leaf()
    for i, value in enumerate(values):
        here = f"{path}[{i}]"
        if isinstance(value, dict):
            _operator(leaf, value, here)
        elif value is None:
            leaf.null_ok = True
        elif value is True:
            leaf.true_ok = True
        elif value is False:
            leaf.false_ok = True
        elif isinstance(value, str):
            leaf.string_exact.add(value)
        elif _is_number(value):
            leaf.number_exact.add(value)
        else:
            _fail(here, "Match value must be String, number, true, false, or null")
    return leaf


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and (not isinstance(value, float) or math.isfinite(value))
    )


def _operator(leaf: _Leaf, expression: dict[str, Any], path: str) -> None:
    if not expression:
        _fail(path, "Match expression name not found")
    if len(expression) > 1:
        _fail(path, "Only one key allowed in match expression")
    ((name, argument),) = expression.items()
    here = _join(path, name)
    compile_operator = _OPERATORS.get(name)
    if compile_operator is None:
        _fail(here, f"Unrecognized match type {name}")
    compile_operator(leaf, argument, here)


def _op_prefix(leaf: _Leaf, argument: Any, path: str) -> None:
    if isinstance(argument, dict):
        leaf.lower_prefixes.append(_ignore_case_argument(argument, path, "Prefix"))
    elif isinstance(argument, str):
        leaf.prefixes.append(argument)
    else:
        _fail(path, "prefix match pattern must be a string")


def _op_suffix(leaf: _Leaf, argument: Any, path: str) -> None:
    if isinstance(argument, dict):
        leaf.lower_suffixes.append(_ignore_case_argument(argument, path, "Suffix"))
    elif isinstance(argument, str):
        leaf.suffixes.append(argument)
    else:
        _fail(path, "suffix match pattern must be a string")


def _ignore_case_argument(argument: dict[str, Any], path: str, what: str) -> str:
    """The lower-cased string of ``{"equals-ignore-case": str}`` under prefix or suffix."""
    if not argument:
        _fail(path, f"{what} expression name not found")
    if len(argument) > 1:
        _fail(path, "Only one key allowed in match expression")
    ((name, value),) = argument.items()
    if name != "equals-ignore-case":
        _fail(_join(path, name), f"Unsupported {what.lower()} pattern: {name}")
    if not isinstance(value, str):
        _fail(_join(path, name), "equals-ignore-case match pattern must be a string")
    return value.lower()


def _op_equals_ignore_case(leaf: _Leaf, argument: Any, path: str) -> None:
    if not isinstance(argument, str):
        _fail(path, "equals-ignore-case match pattern must be a string")
    leaf.lower_exact.add(argument.lower())


def _op_wildcard(leaf: _Leaf, argument: Any, path: str) -> None:
    if not isinstance(argument, str):
        _fail(path, "wildcard match pattern must be a string")
    leaf.string_tests.append(_wildcard(argument, path))


def _op_exists(leaf: _Leaf, argument: Any, path: str) -> None:
    if argument is True:
        leaf.exists_true = True
    elif argument is False:
        leaf.exists_false = True
    else:
        _fail(path, "exists match pattern must be either true or false.")


def _op_numeric(leaf: _Leaf, argument: Any, path: str) -> None:
    leaf.number_tests.append(_numeric(argument, path))


def _op_cidr(leaf: _Leaf, argument: Any, path: str) -> None:
    if not isinstance(argument, str):
        _fail(path, "cidr match pattern must be a string")
    leaf.string_tests.append(_cidr(argument, path))


def _op_anything_but(leaf: _Leaf, argument: Any, path: str) -> None:
    # Whatever is excluded, values of every other type match.
    leaf.any_null = leaf.any_other = True
    leaf.true_ok = leaf.false_ok = True
    if isinstance(argument, dict):
        leaf.any_number = True
        leaf.string_tests.append(_anything_but_object(argument, path))
        return
    if isinstance(argument, str) or _is_number(argument):
        excluded: list[Any] = [argument]
    elif isinstance(argument, list | tuple):
        if not argument:
            _fail(path, "Empty arrays are not allowed")
        for i, value in enumerate(argument):
            if not isinstance(value, str) and not _is_number(value):
                _fail(
                    f"{path}[{i}]", "Inside anything but list, start|null|boolean is not supported."
                )
        excluded = list(argument)
    else:
        _fail(path, "Value of anything-but must be an array or single string/number value.")
    strings = frozenset(v for v in excluded if isinstance(v, str))
    numbers = frozenset(v for v in excluded if not isinstance(v, str))
    if strings and numbers:
        _fail(
            path,
            "Inside anything but list, either all values are number or string, "
            "mixed type is not supported",
        )
    if strings:
        leaf.any_number = True
        leaf.string_tests.append(lambda s: s not in strings)
    else:
        leaf.any_string = True
        leaf.number_tests.append(lambda n: n not in numbers)


def _anything_but_object(argument: dict[str, Any], path: str) -> Test:
    """The string test of ``{"anything-but": {"prefix"|"suffix"|...: str | [str]}}``."""
    if not argument:
        _fail(path, "Anything-But expression name not found")
    if len(argument) > 1:
        _fail(path, "Only one key allowed in match expression")
    ((name, value),) = argument.items()
    here = _join(path, name)
    type_error = {
        "prefix": "prefix/suffix match pattern must be a string",
        "suffix": "prefix/suffix match pattern must be a string",
        "equals-ignore-case": (
            "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported."
        ),
        "wildcard": "wildcard match pattern must be a string",
    }.get(name)
    if type_error is None:
        _fail(here, f"Unsupported anything-but pattern: {name}")
    if isinstance(value, str):
        values = [value]
    elif isinstance(value, list | tuple):
        if not value:
            _fail(here, "Empty arrays are not allowed")
        values = list(value)
    elif _is_number(value):
        _fail(here, type_error)
    else:
        _fail(here, "Value of anything-but must be an array or single string/number value.")
    for i, item in enumerate(values):
        where = f"{here}[{i}]" if not isinstance(value, str) else here
        if not isinstance(item, str):
            _fail(where, type_error)
        if not item and name in ("prefix", "suffix"):
            _fail(where, "Null prefix/suffix not allowed")
    if name == "prefix":
        prefixes = tuple(values)
        return lambda s: not s.startswith(prefixes)
    if name == "suffix":
        suffixes = tuple(values)
        return lambda s: not s.endswith(suffixes)
    if name == "equals-ignore-case":
        lowered = frozenset(v.lower() for v in values)
        return lambda s: s.lower() not in lowered
    wildcards = [
        _wildcard(v, f"{here}[{i}]" if not isinstance(value, str) else here)
        for i, v in enumerate(values)
    ]
    return lambda s: not any(w(s) for w in wildcards)


def _wildcard(text: str, path: str) -> Test:
    """A string test for a wildcard value: ``*`` is any run of characters, ``\\*`` a ``*``."""
    segments: list[str] = []
    current: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "*":
            if i + 1 < n and text[i + 1] == "*":
                # Event Ruler counts positions in the quoted JSON string, hence + 1.
                _fail(path, f"Consecutive wildcard characters at pos {i + 1}")
            segments.append("".join(current))
            current = []
        elif char == "\\":
            if i + 1 < n and text[i + 1] in "*\\":
                current.append(text[i + 1])
                i += 1
            else:
                _fail(path, f"Invalid escape character at pos {i + 1}")
        else:
            current.append(char)
        i += 1
    segments.append("".join(current))
    if len(segments) == 1:
        exact = segments[0]
        return lambda s: s == exact
    first, *middle, last = segments
    least = sum(map(len, segments))
    start, tail = len(first), len(last)

    def match(s: str) -> bool:
        # Greedy leftmost placement of the middle pieces is optimal for '*'-only globs.
        if len(s) < least or not s.startswith(first) or not s.endswith(last):
            return False
        pos, end = start, len(s) - tail
        for piece in middle:
            found = s.find(piece, pos, end)
            if found < 0:
                return False
            pos = found + len(piece)
        return True

    return match


_NUMERIC_OPERATORS = ("=", "<", "<=", ">", ">=")


def _numeric(argument: Any, path: str) -> Test:
    """A number test for ``["=", n]``, ``[op, n]`` or ``[">"|">=", lo, "<"|"<=", hi]``."""
    if not isinstance(argument, list | tuple):
        _fail(path, "Value of numeric must be an array.")
    terms = list(argument)
    if not terms:
        _fail(path, "Invalid member in numeric match: ]")
    operator = terms[0]
    if not isinstance(operator, str):
        _fail(f"{path}[0]", f"Invalid member in numeric match: {_dumps(operator)}")
    if operator not in _NUMERIC_OPERATORS:
        _fail(f"{path}[0]", f"Unrecognized numeric range operator: {operator}")
    if len(terms) < 2 or not _is_number(terms[1]):
        _fail(f"{path}[1]", f"Value of {'equals' if operator == '=' else operator} must be numeric")
    value = terms[1]
    if operator in ("=", "<", "<="):
        if len(terms) > 2:
            _fail(path, "Too many elements in numeric expression")
        if operator == "=":
            return lambda n: n == value
        return (lambda n: n < value) if operator == "<" else (lambda n: n <= value)
    if len(terms) == 2:
        return (lambda n: n > value) if operator == ">" else (lambda n: n >= value)
    top_operator = terms[2]
    if not isinstance(top_operator, str):
        _fail(f"{path}[2]", f"Bad value in numeric range: {_dumps(top_operator)}")
    if top_operator not in ("<", "<="):
        _fail(f"{path}[2]", f"Bad numeric range operator: {top_operator}")
    if len(terms) < 4 or not _is_number(terms[3]):
        _fail(f"{path}[3]", f"Value of {top_operator} must be numeric")
    if len(terms) > 4:
        _fail(path, "Too many terms in numeric range expression")
    bottom, top = value, terms[3]
    if not bottom < top:
        _fail(path, "Bottom must be less than top")
    if operator == ">":
        if top_operator == "<":
            return lambda n: bottom < n < top
        return lambda n: bottom < n <= top
    if top_operator == "<":
        return lambda n: bottom <= n < top
    return lambda n: bottom <= n <= top


def _cidr(text: str, path: str) -> Test:
    """A string test: does the string hold an IP address inside the block ``text``."""
    parts = text.split("/")
    if len(parts) != 2:
        _fail(path, "Malformed CIDR, one '/' required")
    address, bits = parts
    if not (bits.isascii() and bits.isdigit()):
        _fail(path, "Malformed CIDR, mask bits must be an integer")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        _fail(path, f"Nonstandard IP address: {address}")
    if int(bits) > ip.max_prefixlen:
        _fail(path, f"Malformed CIDR, mask bits must be between 0 and {ip.max_prefixlen}")
    network = ipaddress.ip_network(f"{ip}/{bits}", strict=False)
    version, base, mask = network.version, int(network.network_address), int(network.netmask)

    def inside(s: str) -> bool:
        try:
            candidate = ipaddress.ip_address(s)
        except ValueError:
            return False
        return candidate.version == version and int(candidate) & mask == base

    return inside


_OPERATORS: dict[str, Callable[[_Leaf, Any, str], None]] = {
    "prefix": _op_prefix,
    "suffix": _op_suffix,
    "equals-ignore-case": _op_equals_ignore_case,
    "wildcard": _op_wildcard,
    "anything-but": _op_anything_but,
    "numeric": _op_numeric,
    "cidr": _op_cidr,
    "exists": _op_exists,
}


# --------------------------------------------------------------------------------------------
# Matching: each alternative becomes a tree of closures over the event's objects


def _any_of(tests: list[Test]) -> Test:
    if not tests:
        return _false
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        a, b = tests
        return lambda v: a(v) or b(v)
    frozen = tuple(tests)

    def any_test(v: Any) -> bool:
        # Explicit loops on the matching path: any() over a generator costs a frame more.
        for test in frozen:  # noqa: SIM110
            if test(v):
                return True
        return False

    return any_test


def _all_of(tests: list[Test]) -> Test:
    if not tests:
        return _true
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        a, b = tests
        return lambda v: a(v) and b(v)
    frozen = tuple(tests)

    def all_test(v: Any) -> bool:
        for test in frozen:  # noqa: SIM110
            if not test(v):
                return False
        return True

    return all_test


def _string_test(leaf: _Leaf) -> Test:
    if leaf.exists_true or leaf.any_string:
        return _true
    tests: list[Test] = []
    if leaf.string_exact:
        tests.append(frozenset(leaf.string_exact).__contains__)
    if leaf.prefixes:
        prefixes = tuple(leaf.prefixes)
        tests.append(lambda s: s.startswith(prefixes))
    if leaf.suffixes:
        suffixes = tuple(leaf.suffixes)
        tests.append(lambda s: s.endswith(suffixes))
    if leaf.lower_exact or leaf.lower_prefixes or leaf.lower_suffixes:
        lower_exact = frozenset(leaf.lower_exact)
        lower_prefixes, lower_suffixes = tuple(leaf.lower_prefixes), tuple(leaf.lower_suffixes)

        def ignoring_case(s: str) -> bool:
            lowered = s.lower()
            return (
                lowered in lower_exact
                or lowered.startswith(lower_prefixes)
                or lowered.endswith(lower_suffixes)
            )

        tests.append(ignoring_case)
    return _any_of(tests + leaf.string_tests)


def _number_test(leaf: _Leaf) -> Test:
    if leaf.exists_true or leaf.any_number:
        return _true
    tests: list[Test] = []
    if leaf.number_exact:
        # 300 == 300.0 and they hash alike, so set membership compares numerically.
        tests.append(frozenset(leaf.number_exact).__contains__)
    return _any_of(tests + leaf.number_tests)


def _leaf_test(leaf: _Leaf) -> tuple[Test, Test]:
    """(test of any event value, fast test of a str value) for one array of pattern values."""
    absent = leaf.exists_false
    present = leaf.exists_true
    string, number = _string_test(leaf), _number_test(leaf)
    null_ok = present or leaf.null_ok or leaf.any_null
    true_ok = present or leaf.true_ok
    false_ok = present or leaf.false_ok
    other_ok = present or leaf.any_other

    def test(v: Any) -> bool:
        t = type(v)
        if t is str:
            return string(v)
        if t is int or t is float:
            return number(v)
        if t is list:
            values = _leaves(v)
            if not values:
                return absent
            for value in values:  # noqa: SIM110
                if test(value):
                    return True
            return False
        if t is dict or v is _MISSING:
            return absent
        if v is None:
            return null_ok
        if t is bool:
            return true_ok if v else false_ok
        return unusual(v)

    def unusual(v: Any) -> bool:
        # Not produced by a JSON parser, but a caller may build events by hand.
        if isinstance(v, bool):
            return true_ok if v else false_ok
        if isinstance(v, str):
            return string(str(v))
        if isinstance(v, int | float):
            return number(v)
        if isinstance(v, list | tuple):
            return test(list(v))
        if isinstance(v, dict):
            return absent
        return other_ok

    return test, string


def _leaves(values: list[Any]) -> list[Any]:
    """The leaves of an event array, nested arrays flattened, objects left out (no recursion)."""
    out: list[Any] = []
    pending = [values]
    while pending:
        for value in pending.pop():
            t = type(value)
            if t is list:
                pending.append(value)
            elif t is not dict:
                out.append(value)
    return out


def _objects(values: list[Any]) -> list[dict[str, Any]]:
    """The objects in an event array, nested arrays flattened (no recursion)."""
    out: list[dict[str, Any]] = []
    pending = [values]
    while pending:
        for value in pending.pop():
            t = type(value)
            if t is dict:
                out.append(value)
            elif t is list:
                pending.append(value)
    return out


def _leaf_check(key: str, leaf: _Leaf) -> Test:
    test, string = _leaf_test(leaf)

    def check(obj: dict[str, Any]) -> bool:
        value = obj.get(key, _MISSING)
        if type(value) is str:
            return string(value)
        return test(value)

    return check


def _object_check(key: str, node: Test, when_absent: bool) -> Test:
    def check(obj: dict[str, Any]) -> bool:
        value = obj.get(key, _MISSING)
        t = type(value)
        if t is dict:
            return node(value)
        if t is list:
            found = _objects(value)
            if not found:
                return when_absent
            for item in found:  # noqa: SIM110
                if node(item):
                    return True
            return False
        if isinstance(value, dict):  # a dict subclass in a hand-built event
            return node(value)
        if isinstance(value, list | tuple):
            return check({key: list(value)})
        return when_absent

    return check


#: A pattern object as a tree: key -> [leaf values or None, nested object or None].
_Tree = dict[str, list[Any]]


def _tree(alternative: Alternative) -> _Tree:
    root: _Tree = {}
    for keys, leaf in alternative.items():
        node = root
        for key in keys[:-1]:
            slot = node.setdefault(key, [None, None])
            if slot[1] is None:
                slot[1] = {}
            node = slot[1]
        node.setdefault(keys[-1], [None, None])[0] = leaf
    return root


def _compile_tree(tree: _Tree) -> tuple[Test, bool]:
    """The test of an event object, and its answer for an absent object (all fields missing)."""
    leaf_checks: list[Test] = []
    object_checks: list[Test] = []
    when_absent = True
    for key, (leaf, child) in tree.items():
        if leaf is not None:
            leaf_checks.append(_leaf_check(key, leaf))
            when_absent = when_absent and leaf.exists_false
        if child is not None:
            node, child_absent = _compile_tree(child)
            object_checks.append(_object_check(key, node, child_absent))
            when_absent = when_absent and child_absent
    # Leaves are cheap; nested objects later, so a failing leaf avoids the descent.
    return _all_of(leaf_checks + object_checks), when_absent


def _compile_alternatives(alternatives: list[Alternative]) -> Test:
    seen: set[str] = set()
    tests: list[Test] = []
    for alternative in alternatives:
        identity = repr(sorted((keys, id(leaf)) for keys, leaf in alternative.items()))
        if identity in seen:
            continue
        seen.add(identity)
        tests.append(_compile_tree(_tree(alternative))[0])
    root = _any_of(tests)

    def match(event: Any) -> bool:
        if type(event) is dict or isinstance(event, dict):
            return root(event)
        return False

    return match
