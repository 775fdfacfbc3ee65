"""SNS subscription filter policies, table-driven from the examples in the SNS Developer Guide
(sns-subscription-filter-policies, string-value-matching, numeric-value-matching,
attribute-key-matching, and-or-logic, example-filter-policies, filter policy constraints)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sqltide.errors import UnprocessableEntity
from sqltide.notify import InvalidFilterPolicy, Message, compile_filter_policy

# The example transaction of example-filter-policies.html, as plain attributes.
TRANSACTION: dict[str, Any] = {
    "customer_interests": ["soccer", "rugby", "hockey"],
    "store": "example_corp",
    "event": "order_placed",
    "price_usd": 210.75,
}

# (policy, attributes, expected)
CASES: list[tuple[dict[str, Any], dict[str, Any], bool]] = [
    # example-filter-policies: a policy that accepts the example message ...
    (
        {
            "store": ["example_corp"],
            "event": [{"anything-but": "order_cancelled"}],
            "customer_interests": ["rugby", "football", "baseball"],
            "price_usd": [{"numeric": [">=", 100]}],
        },
        TRANSACTION,
        True,
    ),
    # ... and one that rejects it (encrypted is absent, event and interests differ)
    (
        {
            "store": ["example_corp"],
            "event": ["order_cancelled"],
            "encrypted": [False],
            "customer_interests": ["basketball", "baseball"],
        },
        TRANSACTION,
        False,
    ),
    # string exact matching
    ({"customer_interests": ["rugby", "tennis"]}, {"customer_interests": "rugby"}, True),
    ({"customer_interests": ["rugby", "tennis"]}, {"customer_interests": "tennis"}, True),
    (
        {"customer_interests": ["rugby", "tennis"]},
        {"customer_interests": ["rugby", "tennis"]},
        True,
    ),
    ({"customer_interests": ["rugby", "tennis"]}, {"customer_interests": "baseball"}, False),
    ({"customer_interests": ["rugby", "tennis"]}, {"customer_interests": ["baseball"]}, False),
    ({"customer_interests": ["rugby"]}, {"customer_interests": "Rugby"}, False),  # case-sensitive
    ({"customer_interests": ["rugby"]}, {}, False),  # a named attribute must be present
    # anything-but
    (
        {"customer_interests": [{"anything-but": ["rugby", "tennis"]}]},
        {"customer_interests": "baseball"},
        True,
    ),
    (
        {"customer_interests": [{"anything-but": ["rugby", "tennis"]}]},
        {"customer_interests": "football"},
        True,
    ),
    (
        {"customer_interests": [{"anything-but": ["rugby", "tennis"]}]},
        {"customer_interests": "rugby"},
        False,
    ),
    # String.Array: the current guide says it matches only if no element is listed
    (
        {"customer_interests": [{"anything-but": ["rugby", "tennis"]}]},
        {"customer_interests": ["baseball", "golf"]},
        True,
    ),
    (
        {"customer_interests": [{"anything-but": ["rugby", "tennis"]}]},
        {"customer_interests": ["rugby", "baseball"]},
        False,
    ),
    ({"customer_interests": [{"anything-but": "rugby"}]}, {}, False),  # needs the attribute
    (
        {"customer_interests": [{"anything-but": "rugby"}, {"exists": False}]},
        {},
        True,
    ),  # "anything-but can be combined with exists: false"
    # anything-but with a prefix
    ({"event": [{"anything-but": {"prefix": "order-"}}]}, {"event": "data-entry"}, True),
    ({"event": [{"anything-but": {"prefix": "order-"}}]}, {"event": "order_number"}, True),
    ({"event": [{"anything-but": {"prefix": "order-"}}]}, {"event": "order-cancelled"}, False),
    ({"event": [{"anything-but": {"suffix": "-test"}}]}, {"event": "load-test"}, False),
    ({"event": [{"anything-but": {"equals-ignore-case": "TEST"}}]}, {"event": "test"}, False),
    ({"event": [{"anything-but": {"equals-ignore-case": "TEST"}}]}, {"event": "prod"}, True),
    # prefix, suffix, equals-ignore-case
    ({"customer_interests": [{"prefix": "bas"}]}, {"customer_interests": "baseball"}, True),
    ({"customer_interests": [{"prefix": "bas"}]}, {"customer_interests": "basketball"}, True),
    ({"customer_interests": [{"prefix": "bas"}]}, {"customer_interests": "rugby"}, False),
    ({"customer_interests": [{"suffix": "ball"}]}, {"customer_interests": "baseball"}, True),
    ({"customer_interests": [{"suffix": "ball"}]}, {"customer_interests": "rugby"}, False),
    (
        {"customer_interests": [{"equals-ignore-case": "tennis"}]},
        {"customer_interests": "TENNIS"},
        True,
    ),
    (
        {"customer_interests": [{"equals-ignore-case": "tennis"}]},
        {"customer_interests": "Tennis"},
        True,
    ),
    (
        {"customer_interests": [{"equals-ignore-case": "tennis"}]},
        {"customer_interests": "baseball"},
        False,
    ),
    ({"code": [{"prefix": "1"}]}, {"code": 123}, False),  # string operators ignore Numbers
    # IP address matching
    ({"source_ip": [{"cidr": "10.0.0.0/24"}]}, {"source_ip": "10.0.0.0"}, True),
    ({"source_ip": [{"cidr": "10.0.0.0/24"}]}, {"source_ip": "10.0.0.255"}, True),
    ({"source_ip": [{"cidr": "10.0.0.0/24"}]}, {"source_ip": "10.1.1.0"}, False),
    ({"source_ip": [{"cidr": "10.0.0.0/24"}]}, {"source_ip": "not an ip"}, False),
    # numeric: exact, anything-but, ranges
    ({"price_usd": [{"numeric": ["=", 301.5]}]}, {"price_usd": 301.5}, True),
    ({"price_usd": [{"numeric": ["=", 301.5]}]}, {"price_usd": 3.015e2}, True),
    ({"price_usd": [{"numeric": ["=", 301.5]}]}, {"price_usd": 301.6}, False),
    ({"price_usd": [301.5]}, {"price_usd": 301.5}, True),
    ({"price_usd": [5]}, {"price_usd": "5"}, False),  # no conversion between types
    ({"price": [{"anything-but": [100, 500]}]}, {"price": 101}, True),
    ({"price": [{"anything-but": [100, 500]}]}, {"price": 99}, True),
    ({"price": [{"anything-but": [100, 500]}]}, {"price": 100}, False),
    ({"price_usd": [{"numeric": [">", 0, "<=", 150]}]}, {"price_usd": 100}, True),
    ({"price_usd": [{"numeric": [">", 0, "<=", 150]}]}, {"price_usd": 150}, True),
    ({"price_usd": [{"numeric": [">", 0, "<=", 150]}]}, {"price_usd": 0}, False),
    ({"price_usd": [{"numeric": [">", 0, "<=", 150]}]}, {"price_usd": 150.00001}, False),
    ({"price_usd": [{"numeric": [">", 0, "<=", 150]}]}, {"price_usd": "100"}, False),
    ({"price_usd": [{"numeric": [">=", 0, "<", 1]}]}, {"price_usd": 0.000001}, True),
    # five decimal places of accuracy: 1.000001 compares as 1.0
    ({"price_usd": [{"numeric": ["=", 1]}]}, {"price_usd": 1.000001}, True),
    # key matching
    ({"store": [{"exists": True}]}, {"store": "fans", "customer_interests": ["baseball"]}, True),
    ({"store": [{"exists": True}]}, {"customer_interests": ["baseball"]}, False),
    ({"store": [{"exists": False}]}, {"store": "fans"}, False),
    ({"store": [{"exists": False}]}, {"customer_interests": ["baseball"]}, True),
    # AND across names, OR within a list
    (
        {"customer_interests": ["rugby"], "price_usd": [{"numeric": [">", 100]}]},
        {"customer_interests": "rugby", "price_usd": 101},
        True,
    ),
    (
        {"customer_interests": ["rugby"], "price_usd": [{"numeric": [">", 100]}]},
        {"customer_interests": "rugby", "price_usd": 100},
        False,
    ),
    (
        {"customer_interests": ["rugby", "football", "baseball"]},
        {"customer_interests": "football"},
        True,
    ),
    # true, false and null match only themselves
    ({"encrypted": [False]}, {"encrypted": [False]}, True),
    ({"encrypted": [False]}, {"encrypted": [0]}, False),
    ({"flag": [None]}, {"flag": [None, "x"]}, True),
    ({"count": [1]}, {"count": [True]}, False),
    # an empty policy lets everything through
    ({}, TRANSACTION, True),
    ({}, {}, True),
]

OR_POLICY = {
    "source": ["aws.cloudwatch"],
    "$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}],
}

OR_CASES: list[tuple[dict[str, Any], dict[str, Any], bool]] = [
    # and-or-logic: "source" && ("metricName" || "namespace")
    (OR_POLICY, {"source": "aws.cloudwatch", "metricName": "CPUUtilization"}, True),
    (OR_POLICY, {"source": "aws.cloudwatch", "namespace": "AWS/EC2"}, True),
    (OR_POLICY, {"source": "aws.cloudwatch", "metricName": "ReadLatency"}, False),
    (OR_POLICY, {"source": "aws.s3", "namespace": "AWS/EC2"}, False),
    # nested $or: a || (b && (c || d))
    (
        {"$or": [{"a": ["1"]}, {"b": ["2"], "$or": [{"c": ["3"]}, {"d": ["4"]}]}]},
        {"b": "2", "d": "4"},
        True,
    ),
    (
        {"$or": [{"a": ["1"]}, {"b": ["2"], "$or": [{"c": ["3"]}, {"d": ["4"]}]}]},
        {"b": "2"},
        False,
    ),
    (
        {"$or": [{"a": ["1"]}, {"b": ["2"], "$or": [{"c": ["3"]}, {"d": ["4"]}]}]},
        {"a": "1"},
        True,
    ),
    # "$or" with one branch is an ordinary attribute name... whose values are match values
    ({"$or": ["x"]}, {"$or": "x"}, True),
]


@pytest.mark.parametrize(("policy", "attributes", "expected"), CASES + OR_CASES)
def test_filter_policy_matches(
    policy: dict[str, Any], attributes: dict[str, Any], expected: bool
) -> None:
    compiled = compile_filter_policy(policy)
    assert compiled.matches(attributes) is expected
    # the same policy given as JSON text behaves the same
    assert compile_filter_policy(json.dumps(policy)).matches(attributes) is expected


def test_attributes_in_sns_typed_form() -> None:
    """The MessageAttributes of example-filter-policies.html, exactly as SNS shows them."""
    attributes = {
        "customer_interests": {"Type": "String.Array", "Value": '["soccer", "rugby", "hockey"]'},
        "store": {"Type": "String", "Value": "example_corp"},
        "event": {"Type": "String", "Value": "order_placed"},
        "price_usd": {"Type": "Number", "Value": "210.75"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00"},
        "weight": {"DataType": "Number.float", "StringValue": "3.5"},
    }
    policy = compile_filter_policy(
        {
            "store": ["example_corp"],
            "customer_interests": ["rugby"],
            "price_usd": [{"numeric": [">=", 100]}],
            "weight": [{"numeric": ["<", 4]}],
        }
    )
    assert policy.matches(attributes)
    # SNS ignores Binary attributes: for a filter they are absent
    assert compile_filter_policy({"blob": [{"exists": False}]}).matches(attributes)


def test_matches_message_uses_the_attributes() -> None:
    policy = compile_filter_policy({"state": ["FAILED", "ABORTED"]})
    assert policy.matches_message(Message("s", "b", {"state": "FAILED"}))
    assert not policy.matches_message(Message("s", "b", {"state": "FINISHED"}))
    assert not policy.matches_message(Message("s", "b"))


BODY = {
    "customer_interests": ["soccer", "rugby", "hockey"],
    "store": "example_corp",
    "event": "order_placed",
    "price_usd": 210.75,
    "order": {"lines": [{"sku": "a-1", "qty": 2}, {"sku": "b-7", "qty": 1}], "gift": None},
}


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (
            {
                "store": ["example_corp"],
                "event": [{"anything-but": "order_cancelled"}],
                "customer_interests": ["rugby", "football", "baseball"],
                "price_usd": [{"numeric": [">=", 100]}],
            },
            True,
        ),
        ({"order": {"lines": {"sku": [{"prefix": "b-"}]}}}, True),
        ({"order": {"lines": {"qty": [{"numeric": [">", 5]}]}}}, False),
        ({"order": {"gift": [None]}}, True),
        ({"order": {"coupon": [{"exists": False}]}}, True),
        ({"order": {"lines": {"sku": [{"exists": True}]}}}, True),
        ({"store": ["other"]}, False),
        (
            {"$or": [{"order": {"gift": [True]}}, {"price_usd": [{"numeric": [">", 200]}]}]},
            True,
        ),
    ],
)
def test_message_body_scope(policy: dict[str, Any], expected: bool) -> None:
    compiled = compile_filter_policy(policy, scope="MessageBody")
    assert compiled.matches(BODY) is expected
    assert compiled.matches(json.dumps(BODY)) is expected
    assert compiled.matches_message(Message("s", json.dumps(BODY))) is expected


def test_message_body_scope_needs_a_json_object() -> None:
    policy = compile_filter_policy({"a": [{"exists": False}]}, scope="MessageBody")
    assert policy.matches({"b": 1})
    assert not policy.matches("not json")
    assert not policy.matches("[1, 2]")
    assert not policy.matches_message(Message("s", "plain text"))


# (policy, path, words in the reason)
INVALID: list[tuple[Any, str, str]] = [
    ("{not json", "$", "not valid JSON"),
    ([], "$", "JSON object"),
    ('["a"]', "$", "JSON object"),
    ({"a": "x"}, "$.a", "expected an array"),
    ({"a": 5}, "$.a", "expected an array"),
    ({"a": []}, "$.a", "empty arrays"),
    ({"a": {"b": ["x"]}}, "$.a", "MessageBody scope"),
    ({"a": [["x"]]}, "$.a[0]", "match value"),
    ({"a": [{"prefix": 1}]}, "$.a[0].prefix", "needs a string"),
    ({"a": [{"suffix": None}]}, "$.a[0].suffix", "needs a string"),
    ({"a": [{"prefix": "x", "suffix": "y"}]}, "$.a[0]", "exactly one key"),
    ({"a": [{"wildcard": "x*"}]}, "$.a[0]", "unknown operator 'wildcard'"),
    ({"a": [{"exists": "yes"}]}, "$.a[0].exists", "true or false"),
    ({"a": [{"cidr": "10.0.0.0/33"}]}, "$.a[0].cidr", "not a valid network"),
    ({"a": [{"anything-but": ["x", 1]}]}, "$.a[0].anything-but", "not both"),
    ({"a": [{"anything-but": []}]}, "$.a[0].anything-but", "at least one"),
    ({"a": [{"anything-but": True}]}, "$.a[0].anything-but[0]", "expected a number"),
    ({"a": [{"anything-but": {"wildcard": "x"}}]}, "$.a[0].anything-but", "not 'wildcard'"),
    ({"a": [{"numeric": [">", 5, "<"]}]}, "$.a[0].numeric", "[operator, number]"),
    ({"a": [{"numeric": "> 5"}]}, "$.a[0].numeric", "[operator, number]"),
    ({"a": [{"numeric": ["!=", 5]}]}, "$.a[0].numeric[0]", "unknown numeric operator"),
    ({"a": [{"numeric": [">", "5"]}]}, "$.a[0].numeric[1]", "expected a number"),
    ({"a": [{"numeric": ["<", 5, ">", 1]}]}, "$.a[0].numeric", "lower bound"),
    ({"a": [{"numeric": ["=", 1, "<", 5]}]}, "$.a[0].numeric", "lower bound"),
    ({"a": [{"numeric": [">", 5, "<", 1]}]}, "$.a[0].numeric", "less than the upper"),
    ({"a": [{"numeric": ["=", 1e10]}]}, "$.a[0].numeric[1]", "between -1e9 and 1e9"),
    ({"a": [-2e9]}, "$.a[0]", "between -1e9 and 1e9"),
    # "$or" with operator keywords is an attribute name, so these are bad match values
    ({"$or": [{"numeric": 123}, {"prefix": "abc"}]}, '$["$or"][0].numeric', "[operator, number]"),
    ({"$or": [{"a": ["1"]}, {"b": []}]}, '$["$or"][1].b', "empty arrays"),
    (
        {"k1": ["a"], "k2": ["a"], "k3": ["a"], "k4": ["a"], "k5": ["a"], "k6": ["a"]},
        "$",
        "at most 5 keys",
    ),
    (
        {"$or": [{"k1": ["a"], "k2": ["a"], "k3": ["a"]}, {"k4": ["a"], "k5": ["a"], "k6": ["a"]}]},
        "$",
        "at most 5 keys",
    ),
    ({"a": [str(i) for i in range(151)]}, "$", "151 value combinations"),
    (
        {"a": [str(i) for i in range(10)], "b": [str(i) for i in range(10)], "c": ["x", "y"]},
        "$",
        "200 value",
    ),
]


@pytest.mark.parametrize(("policy", "path", "reason"), INVALID)
def test_invalid_filter_policies(policy: Any, path: str, reason: str) -> None:
    with pytest.raises(InvalidFilterPolicy) as caught:
        compile_filter_policy(policy)
    error = caught.value
    assert error.path == path
    assert reason in error.reason
    assert isinstance(error, UnprocessableEntity)
    assert error.code == "invalid_filter_policy"
    assert error.http_status == 422
    assert error.to_dict()["details"] == {"reason": error.reason, "path": path}


def test_limits_count_or_branches_as_a_sum() -> None:
    # constraints: 3 x 1 x 2 = 6 combinations; $or branches add up (10 + 10) x 7 = 140
    compile_filter_policy({"key_a": ["1", "2", "3"], "key_b": ["1"], "key_c": ["1", "2"]})
    compile_filter_policy(
        {
            "$or": [{"a": [str(i) for i in range(10)]}, {"b": [str(i) for i in range(10)]}],
            "c": [str(i) for i in range(7)],
        }
    )
    with pytest.raises(InvalidFilterPolicy, match="160 value combinations"):
        compile_filter_policy(
            {
                "$or": [{"a": [str(i) for i in range(10)]}, {"b": [str(i) for i in range(10)]}],
                "c": [str(i) for i in range(8)],
            }
        )


def test_unknown_scope_and_oversized_policy() -> None:
    with pytest.raises(InvalidFilterPolicy, match="FilterPolicyScope"):
        compile_filter_policy({}, scope="Body")  # type: ignore[arg-type]
    with pytest.raises(InvalidFilterPolicy, match="larger than"):
        compile_filter_policy(json.dumps({"a": ["x" * 300_000]}))


def test_nested_policies_are_allowed_in_the_body_scope_only() -> None:
    compile_filter_policy({"a": {"b": ["x"]}}, scope="MessageBody")
    with pytest.raises(InvalidFilterPolicy, match="empty objects"):
        compile_filter_policy({"a": {}}, scope="MessageBody")


def test_repr_shows_the_policy() -> None:
    assert repr(compile_filter_policy({"a": ["x"]})) == (
        'FilterPolicy({"a": ["x"]}, scope=\'MessageAttributes\')'
    )
