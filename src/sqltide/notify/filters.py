"""SNS subscription filter policies: which messages a subscription receives.

A filter policy maps attribute names to lists of match values; a message passes when, for
every name in the policy, at least one of its values matches the message's attribute
(AND across names, OR within a list). Attributes the policy does not name are ignored.

======================================  ================================================
policy value                            matches an attribute that ...
======================================  ================================================
``"rugby"``, ``210.75``, ``true``,      equals it (strings case-sensitively, numbers
``null``                                numerically, to 5 decimal places)
``{"prefix": "bas"}``                   is a string starting with ``bas``
``{"suffix": ".png"}``                  is a string ending with ``.png``
``{"equals-ignore-case": "ec2"}``       is a string equal to ``ec2`` ignoring case
``{"anything-but": "x" | 5 | [...]}``   exists and is none of the values
``{"anything-but": {"prefix": "o-"}}``  exists and is a string not starting with ``o-``
                                        (also ``suffix`` and ``equals-ignore-case``)
``{"numeric": [">", 0, "<=", 5]}``      is a number in the range (``=``, ``<``, ``<=``,
                                        ``>``, ``>=``; a range is a lower then an upper
                                        bound)
``{"exists": true | false}``            is present / absent
``{"cidr": "10.0.0.0/24"}``             is an IP address (string) in the network
======================================  ================================================

``"$or": [{...}, {...}]`` at any level ORs whole sub-policies (``source && (a || b)``); as in
SNS it is only an operator when its value is a list of two or more objects none of which
uses an operator keyword as a key, otherwise ``$or`` is an ordinary attribute name.

Values of a String.Array attribute are matched one by one: a positive operator matches when
any element matches, ``anything-but`` only when no element is excluded (the current SNS
documentation; an older revision said "any element not excluded"). Binary attributes are
ignored, as by SNS. Types are not converted: the policy value ``"5"`` does not match the
Number ``5``, ``prefix`` never matches a Number, and ``numeric`` only matches Numbers.

Scopes: ``MessageAttributes`` (the default; a flat policy on :attr:`Message.attributes`) and
``MessageBody`` (the policy mirrors the nesting of a JSON message body; arrays in the body
are searched element by element, without tying fields to the same array element).

Limits checked by :func:`compile_filter_policy`, as SNS's: at most 5 keys, at most 150
value combinations (the product of the lengths of the value lists, ``$or`` branches
adding up), numbers between -1e9 and 1e9, 256 KiB of JSON.

Sources: docs.aws.amazon.com/sns/latest/dg — sns-subscription-filter-policies,
string-value-matching, numeric-value-matching, attribute-key-matching, and-or-logic,
example-filter-policies, subscription-filter-policy-constraints.
"""

from __future__ import annotations

import abc
import ipaddress
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from sqltide.errors import InvalidFilterPolicy
from sqltide.notify.messages import Message

__all__ = [
    "MAX_COMBINATIONS",
    "MAX_KEYS",
    "FilterPolicy",
    "FilterPolicyScope",
    "InvalidFilterPolicy",
    "compile_filter_policy",
]

FilterPolicyScope: TypeAlias = Literal["MessageAttributes", "MessageBody"]

#: SNS: "A filter policy can have a maximum of five keys."
MAX_KEYS = 5
#: SNS: "The total combination of values must not exceed 150."
MAX_COMBINATIONS = 150
#: SNS: numeric values "from -10^9 to 10^9, with five digits of accuracy after the decimal point".
MAX_NUMBER = 1e9
NUMERIC_DECIMALS = 5
MAX_POLICY_BYTES = 262_144

_OPERATORS = frozenset(
    {"prefix", "suffix", "equals-ignore-case", "anything-but", "numeric", "exists", "cidr"}
)
# Keywords that stop "$or" from being an operator (EventBridge's wildcard included: SNS
# reserves the same words although it does not support every one of them).
_KEYWORDS = _OPERATORS | {"wildcard"}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")

Scalar: TypeAlias = str | int | float | bool | None
# What a policy key finds in a message: (present, values to match).
_Found: TypeAlias = tuple[bool, list[Scalar]]


def _invalid(reason: str, path: str = "$") -> InvalidFilterPolicy:
    """The error for the policy's part at ``path``."""
    return InvalidFilterPolicy(
        f"Invalid filter policy at {path}: {reason}", details={"reason": reason, "path": path}
    )


# --- matchers -----------------------------------------------------------------------------


def _number(value: object) -> float | None:
    """``value`` as a number rounded as SNS compares them, or None if it is not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value):
        return None
    return round(float(value), NUMERIC_DECIMALS)


def _same(value: Scalar, expected: Scalar) -> bool:
    if expected is None or isinstance(expected, bool):
        return value is expected
    if isinstance(expected, str):
        return isinstance(value, str) and value == expected
    number = _number(value)
    return number is not None and number == _number(expected)


class _Matcher(abc.ABC):
    @abc.abstractmethod
    def test(self, present: bool, values: Sequence[Scalar]) -> bool:
        """Whether the attribute (``present`` or not, with these values) passes."""


@dataclass(frozen=True, slots=True)
class _Exact(_Matcher):
    value: Scalar

    def test(self, present: bool, values: Sequence[Scalar]) -> bool:
        return any(_same(v, self.value) for v in values)


@dataclass(frozen=True, slots=True)
class _StringTest(_Matcher):
    """prefix, suffix and equals-ignore-case: strings only."""

    kind: str
    text: str

    def hit(self, value: Scalar) -> bool:
        if not isinstance(value, str):
            return False
        if self.kind == "prefix":
            return value.startswith(self.text)
        if self.kind == "suffix":
            return value.endswith(self.text)
        return value.casefold() == self.text.casefold()

    def test(self, present: bool, values: Sequence[Scalar]) -> bool:
        return any(self.hit(v) for v in values)


@dataclass(frozen=True, slots=True)
class _AnythingBut(_Matcher):
    excluded: tuple[Scalar, ...] = ()
    # anything-but {"prefix"|"suffix"|"equals-ignore-case": ...}: the value must be a string
    pattern: _StringTest | None = None

    def allowed(self, value: Scalar) -> bool:
        if self.pattern is not None:
            return isinstance(value, str) and not self.pattern.hit(value)
        return not any(_same(value, x) for x in self.excluded)

    def test(self, present: bool, values: Sequence[Scalar]) -> bool:
        return bool(values) and all(self.allowed(v) for v in values)


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "=": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


@dataclass(frozen=True, slots=True)
class _Numeric(_Matcher):
    conditions: tuple[tuple[str, float], ...]

    def hit(self, value: Scalar) -> bool:
        number = _number(value)
        return number is not None and all(
            _COMPARE[op](number, bound) for op, bound in self.conditions
        )

    def test(self, present: bool, values: Sequence[Scalar]) -> bool:
        return any(self.hit(v) for v in values)


@dataclass(frozen=True, slots=True)
class _Exists(_Matcher):
    exists: bool

    def test(self, present: bool, values: Sequence[Scalar]) -> bool:
        return present is self.exists


@dataclass(frozen=True, slots=True)
class _Cidr(_Matcher):
    network: ipaddress.IPv4Network | ipaddress.IPv6Network

    def hit(self, value: Scalar) -> bool:
        if not isinstance(value, str):
            return False
        try:
            return ipaddress.ip_address(value) in self.network
        except ValueError:
            return False

    def test(self, present: bool, values: Sequence[Scalar]) -> bool:
        return any(self.hit(v) for v in values)


# --- compiled policy ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Field:
    path: tuple[str, ...]
    matchers: tuple[_Matcher, ...]

    def test(self, found: _Found) -> bool:
        present, values = found
        return any(m.test(present, values) for m in self.matchers)


@dataclass(frozen=True, slots=True)
class _Conjunction:
    fields: tuple[_Field, ...]
    # each group is an "$or": one of its branches must match
    alternatives: tuple[tuple[_Conjunction, ...], ...]

    def matches(self, lookup: Callable[[tuple[str, ...]], _Found]) -> bool:
        return all(f.test(lookup(f.path)) for f in self.fields) and all(
            any(branch.matches(lookup) for branch in group) for group in self.alternatives
        )

    def keys(self) -> set[tuple[str, ...]]:
        out = {f.path for f in self.fields}
        for group in self.alternatives:
            for branch in group:
                out |= branch.keys()
        return out

    def combinations(self) -> int:
        total = math.prod(len(f.matchers) for f in self.fields)
        for group in self.alternatives:
            total *= sum(branch.combinations() for branch in group)
        return total


@dataclass(frozen=True, slots=True, eq=False)
class FilterPolicy:
    """A compiled, validated filter policy; build it with :func:`compile_filter_policy`."""

    #: The policy as given (parsed from JSON if it was text).
    policy: dict[str, Any]
    scope: FilterPolicyScope
    _root: _Conjunction

    def matches(self, data: Mapping[str, Any] | str | None) -> bool:
        """Whether a message with these attributes (or, in the ``MessageBody`` scope, this
        JSON body) passes the policy.

        Attributes may be given as plain values (``{"price": 210.75, "tags": ["a"]}``, as in
        :attr:`Message.attributes`) or in SNS's typed form (``{"price": {"Type": "Number",
        "Value": "210.75"}}``, also with ``DataType``/``StringValue``). A body that is not a
        JSON object never passes a ``MessageBody`` policy (as in SNS).
        """
        if self.scope == "MessageAttributes":
            attributes = _normalize_attributes(data or {}) if not isinstance(data, str) else {}
            return self._root.matches(lambda path: _attribute_lookup(attributes, path))
        body: object = data
        if isinstance(data, str):
            try:
                body = json.loads(data)
            except ValueError:
                return False
        if not isinstance(body, Mapping):
            return False
        return self._root.matches(lambda path: _body_lookup(body, path))

    def matches_message(self, message: Message) -> bool:
        """Whether ``message`` passes: its attributes, or its body (for a per-protocol
        message, the ``default`` body) in the ``MessageBody`` scope."""
        if self.scope == "MessageAttributes":
            return self.matches(message.attributes)
        return self.matches(message.text_for("default"))

    def __repr__(self) -> str:
        return f"FilterPolicy({json.dumps(self.policy)}, scope={self.scope!r})"


def compile_filter_policy(
    policy: Mapping[str, Any] | str | bytes,
    *,
    scope: FilterPolicyScope = "MessageAttributes",
) -> FilterPolicy:
    """Validate and compile a subscription filter policy.

    Args:
        policy: the policy, as a mapping or as JSON text. ``{}`` lets every message through.
        scope: ``MessageAttributes`` (flat, on message attributes) or ``MessageBody``
            (nested, on the JSON message body).

    Raises:
        InvalidFilterPolicy: with a ``reason`` and the JSON ``path`` of the offending part
            (e.g. ``$.price_usd[0].numeric``).

    >>> p = compile_filter_policy({"store": ["example_corp"], "price_usd": [{"numeric": [">=", 100]}]})
    >>> p.matches({"store": "example_corp", "price_usd": 210.75}), p.matches({"store": "x"})
    (True, False)
    """
    if scope not in ("MessageAttributes", "MessageBody"):
        raise _invalid(f"unknown FilterPolicyScope {scope!r}; use MessageAttributes or MessageBody")
    if isinstance(policy, str | bytes):
        raw = policy.encode() if isinstance(policy, str) else policy
        if len(raw) > MAX_POLICY_BYTES:
            raise _invalid(f"the policy is larger than {MAX_POLICY_BYTES} bytes")
        try:
            parsed = json.loads(raw)
        except ValueError as exc:
            raise _invalid(f"not valid JSON ({exc})") from exc
    else:
        parsed = policy
    if not isinstance(parsed, Mapping):
        raise _invalid("a filter policy must be a JSON object")
    parsed = dict(parsed)
    root = _Compiler(scope).conjunction(parsed, (), "$")
    keys = root.keys()
    if len(keys) > MAX_KEYS:
        raise _invalid(
            f"a filter policy can have at most {MAX_KEYS} keys; this one has {len(keys)}"
        )
    combinations = root.combinations()
    if combinations > MAX_COMBINATIONS:
        raise _invalid(
            f"the policy is too complex: {combinations} value combinations, "
            f"the limit is {MAX_COMBINATIONS}"
        )
    return FilterPolicy(parsed, scope, root)


# --- compiling ----------------------------------------------------------------------------


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if _IDENTIFIER.fullmatch(key) else f"{path}[{json.dumps(key)}]"


def _is_or(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) >= 2
        and all(isinstance(b, Mapping) and not (_KEYWORDS & set(b)) for b in value)
    )


def _policy_number(value: object, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _invalid("expected a number", path)
    if not -MAX_NUMBER <= value <= MAX_NUMBER:
        raise _invalid("numbers must be between -1e9 and 1e9", path)
    return round(float(value), NUMERIC_DECIMALS)


class _Compiler:
    def __init__(self, scope: FilterPolicyScope) -> None:
        self.scope = scope

    def conjunction(
        self, policy: Mapping[str, Any], prefix: tuple[str, ...], path: str
    ) -> _Conjunction:
        fields: list[_Field] = []
        alternatives: list[tuple[_Conjunction, ...]] = []
        for key, value in policy.items():
            if not isinstance(key, str):
                raise _invalid("keys must be strings", path)
            here = _child(path, key)
            if key == "$or" and _is_or(value):
                alternatives.append(
                    tuple(
                        self.conjunction(branch, prefix, f"{here}[{i}]")
                        for i, branch in enumerate(value)
                    )
                )
            elif isinstance(value, Mapping):
                if self.scope == "MessageAttributes":
                    raise _invalid(
                        "nested objects need the MessageBody scope; "
                        "MessageAttributes policies are flat",
                        here,
                    )
                if not value:
                    raise _invalid("empty objects are not allowed", here)
                nested = self.conjunction(value, (*prefix, key), here)
                fields.extend(nested.fields)
                alternatives.extend(nested.alternatives)
            elif isinstance(value, list):
                if not value:
                    raise _invalid("empty arrays are not allowed", here)
                matchers = tuple(self.rule(rule, f"{here}[{i}]") for i, rule in enumerate(value))
                fields.append(_Field((*prefix, key), matchers))
            else:
                raise _invalid("expected an array of match values", here)
        return _Conjunction(tuple(fields), tuple(alternatives))

    def rule(self, rule: object, path: str) -> _Matcher:
        if rule is None or isinstance(rule, str | bool):
            return _Exact(rule)
        if isinstance(rule, int | float):
            return _Exact(_policy_number(rule, path))
        if not isinstance(rule, Mapping):
            raise _invalid(
                "a match value must be a string, a number, true, false, null or an operator object",
                path,
            )
        if len(rule) != 1:
            raise _invalid("an operator object must have exactly one key", path)
        ((operator, argument),) = rule.items()
        here = _child(path, str(operator))
        if operator in ("prefix", "suffix", "equals-ignore-case"):
            if not isinstance(argument, str):
                raise _invalid(f"{operator} needs a string", here)
            return _StringTest(operator, argument)
        if operator == "anything-but":
            return self.anything_but(argument, here)
        if operator == "numeric":
            return self.numeric(argument, here)
        if operator == "exists":
            if not isinstance(argument, bool):
                raise _invalid("exists needs true or false", here)
            return _Exists(argument)
        if operator == "cidr":
            if not isinstance(argument, str):
                raise _invalid("cidr needs a network such as '10.0.0.0/24'", here)
            try:
                return _Cidr(ipaddress.ip_network(argument, strict=False))
            except ValueError as exc:
                raise _invalid(f"not a valid network ({exc})", here) from exc
        raise _invalid(
            f"unknown operator {operator!r}; SNS filter policies support "
            f"{', '.join(sorted(_OPERATORS))}",
            path,
        )

    def anything_but(self, argument: object, path: str) -> _AnythingBut:
        if isinstance(argument, Mapping):
            if len(argument) != 1:
                raise _invalid("anything-but takes one operator", path)
            ((operator, text),) = argument.items()
            if operator not in ("prefix", "suffix", "equals-ignore-case"):
                raise _invalid(
                    f"anything-but supports prefix, suffix and equals-ignore-case, not {operator!r}",
                    path,
                )
            if not isinstance(text, str):
                raise _invalid(f"{operator} needs a string", _child(path, operator))
            return _AnythingBut(pattern=_StringTest(operator, text))
        values: list[Any] = argument if isinstance(argument, list) else [argument]
        if not values:
            raise _invalid("anything-but needs at least one value", path)
        if all(isinstance(v, str) for v in values):
            return _AnythingBut(excluded=tuple(values))
        if not any(isinstance(v, str) for v in values):
            return _AnythingBut(
                excluded=tuple(_policy_number(v, f"{path}[{i}]") for i, v in enumerate(values))
            )
        raise _invalid(
            "anything-but takes strings or numbers (not both), or a prefix/suffix/"
            "equals-ignore-case object",
            path,
        )

    def numeric(self, argument: object, path: str) -> _Numeric:
        if not isinstance(argument, list) or len(argument) not in (2, 4):
            raise _invalid(
                "numeric needs [operator, number] or [lower operator, number, "
                "upper operator, number]",
                path,
            )
        conditions: list[tuple[str, float]] = []
        for i in range(0, len(argument), 2):
            operator = argument[i]
            if operator not in _COMPARE:
                raise _invalid(
                    f"unknown numeric operator {operator!r}; use =, <, <=, > or >=",
                    f"{path}[{i}]",
                )
            conditions.append((operator, _policy_number(argument[i + 1], f"{path}[{i + 1}]")))
        if len(conditions) == 2:
            (low_op, low), (high_op, high) = conditions
            if low_op not in (">", ">=") or high_op not in ("<", "<="):
                raise _invalid(
                    "a numeric range is a lower bound (> or >=) then an upper bound (< or <=)",
                    path,
                )
            if low >= high:
                raise _invalid("the lower bound must be less than the upper bound", path)
        return _Numeric(tuple(conditions))


# --- looking values up --------------------------------------------------------------------

_ABSENT: _Found = (False, [])


def _normalize_attributes(attributes: Mapping[str, Any]) -> dict[str, list[Scalar]]:
    out: dict[str, list[Scalar]] = {}
    for name, value in attributes.items():
        if isinstance(value, Mapping):
            kind = str(value.get("DataType") or value.get("Type") or "String")
            text = value.get("StringValue", value.get("Value"))
            if kind.startswith("Binary"):
                continue  # SNS ignores Binary attributes when filtering
            if kind == "String.Array":
                try:
                    decoded = json.loads(text) if isinstance(text, str) else text
                except ValueError:
                    decoded = text
                out[name] = _scalars(decoded)
            elif kind.startswith("Number"):
                out[name] = [_parse_number(text)]
            else:
                out[name] = [text if text is None else str(text)]
        else:
            out[name] = _scalars(value)
    return out


def _parse_number(text: object) -> Scalar:
    if isinstance(text, int | float) and not isinstance(text, bool):
        return text
    try:
        number = float(str(text))
    except ValueError:
        return str(text)
    return number if math.isfinite(number) else str(text)


def _scalars(value: object) -> list[Scalar]:
    if isinstance(value, list | tuple):
        return [v for v in value if v is None or isinstance(v, str | int | float)]
    if value is None or isinstance(value, str | int | float):
        return [value]
    return []


def _attribute_lookup(attributes: Mapping[str, list[Scalar]], path: tuple[str, ...]) -> _Found:
    (name,) = path
    if name not in attributes:
        return _ABSENT
    return True, attributes[name]


def _body_lookup(body: Mapping[str, Any], path: tuple[str, ...]) -> _Found:
    nodes: list[Any] = [body]
    for key in path:
        found: list[Any] = []
        for node in _expand(nodes):
            if isinstance(node, Mapping) and key in node:
                found.append(node[key])
        if not found:
            return _ABSENT
        nodes = found
    values = [v for v in _expand(nodes) if v is None or isinstance(v, str | int | float)]
    return True, values


def _expand(nodes: list[Any]) -> list[Any]:
    out: list[Any] = []
    for node in nodes:
        if isinstance(node, list):
            out.extend(_expand(node))
        else:
            out.append(node)
    return out
