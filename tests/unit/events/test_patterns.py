"""EventBridge event patterns: documented examples, AWS-validated edge cases, invalid patterns and
properties.

Cases marked "guide" come from the EventBridge user guide, "ruler" from aws/event-ruler's README,
and "aws" from LocalStack's parity templates, whose outcome was recorded against the real service
(``tests/aws/services/events/event_pattern_templates`` and its snapshot).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sqltide import errors
from sqltide.events.patterns import (
    MAX_PATTERN_LENGTH,
    InvalidPattern,
    Pattern,
    compile_pattern,
)

EC2_EVENT = {
    "version": "0",
    "id": "ddddd4-aaaa-7777-4444-345dd43cc333",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "012345679012",
    "time": "2017-10-02T16:24:49Z",
    "region": "us-east-1",
    "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
    "detail": {
        "c-count": 5,
        "d-count": 3,
        "x-limit": 301.8,
        "source-ip": "10.0.0.33",
        "instance-id": "i-000000aaaaaa00000",
        "state": "running",
    },
}

AUTOSCALING_EVENT = {
    "version": "0",
    "id": "3e3c153a-8339-4e30-8c35-687ebef853fe",
    "detail-type": "EC2 Instance Launch Successful",
    "source": "aws.autoscaling",
    "account": "123456789012",
    "time": "2015-11-11T21:31:47Z",
    "region": "us-east-1",
    "resources": [],
    "detail": {"eventVersion": "", "responseElements": None},
}

#: Seed 000: the completion rule of the Redshift Data API event-driven ELT sample.
SEED_PRINCIPAL = (
    "arn:aws:sts::123456789012:assumed-role/LambdaRedshiftDataApiETLRole/LambdaRedshiftDataApiETL"
)
SEED_RULE = {"source": ["aws.redshift-data"], "detail": {"principal": [SEED_PRINCIPAL]}}


def redshift_event(state: str = "FINISHED", principal: str = SEED_PRINCIPAL) -> dict[str, Any]:
    """A "Redshift Data Statement Status Change" event as the Data API sends it."""
    return {
        "version": "0",
        "id": "18e7079c-dd4b-dd64-caf9-e2a31640dab0",
        "detail-type": "Redshift Data Statement Status Change",
        "source": "aws.redshift-data",
        "account": "123456789012",
        "time": "2020-10-01T21:14:26Z",
        "region": "us-east-1",
        "resources": ["arn:aws:redshift:us-east-1:123456789012:cluster:redshift-cluster-1"],
        "detail": {
            "principal": principal,
            "statementName": "test.testtable",
            "statementId": "dd2e1ec9-2ee3-49a0-819f-905fa7d75a4a",
            "redshiftQueryId": -1,
            "state": state,
            "rows": 1,
            "expireAt": 1601673265,
        },
    }


def detail(**fields: Any) -> dict[str, Any]:
    return {"source": "test-source", "detail-type": "test", "detail": fields}


# (id, pattern, event, expected)
MATCH_CASES: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    # --- event patterns, simple matching ----------------------------------------------------
    (
        "guide-ec2-terminated",
        {
            "source": ["aws.ec2"],
            "detail-type": ["EC2 Instance State-change Notification"],
            "detail": {"state": ["terminated"]},
        },
        {**EC2_EVENT, "detail": {"instance-id": "i-1", "state": "terminated"}},
        True,
    ),
    (
        "guide-ec2-not-terminated",
        {"source": ["aws.ec2"], "detail": {"state": ["terminated"]}},
        EC2_EVENT,
        False,
    ),
    (
        "ruler-simple",
        {
            "detail-type": ["EC2 Instance State-change Notification"],
            "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
            "detail": {"state": ["initializing", "running"]},
        },
        EC2_EVENT,
        True,
    ),
    ("guide-source-or", {"source": ["aws.ec2", "aws.fargate"]}, EC2_EVENT, True),
    ("guide-missing-field", {"detail": {"nope": ["running"]}}, EC2_EVENT, False),
    (
        "guide-macie-numbers",
        {"source": ["aws.macie"], "detail": {"risk-score": [80], "trigger": {"risk": [8]}}},
        {"source": "aws.macie", "detail": {"risk-score": 80, "trigger": {"risk": 8, "x": "y"}}},
        True,
    ),
    ("aws-key-case-sensitive", {"Source": ["aws.ec2"]}, EC2_EVENT, False),
    ("aws-value-case-sensitive", {"source": ["AWS.EC2"]}, EC2_EVENT, False),
    ("aws-number-300-matches-300.0", {"number": [300]}, {"number": 300.0}, True),
    ("number-not-string", {"number": [300]}, {"number": "300"}, False),
    ("string-not-number", {"number": ["300"]}, {"number": 300}, False),
    ("true-is-not-1", {"flag": [True]}, {"flag": 1}, False),
    ("1-is-not-true", {"flag": [1]}, {"flag": True}, False),
    ("aws-boolean", {"flag": [True]}, {"flag": True}, True),
    ("aws-boolean-neg", {"flag": [False]}, {"flag": True}, False),
    (
        "aws-nested-json-string-is-not-an-object",
        {"detail": {"my-key": ["my-value"]}},
        {"detail": '{"my-key": "my-value"}'},
        False,
    ),
    # --- null values and empty strings --------------------------------------------------------
    ("guide-null", {"detail": {"responseElements": [None]}}, AUTOSCALING_EVENT, True),
    ("guide-empty-string", {"detail": {"eventVersion": [""]}}, AUTOSCALING_EVENT, True),
    (
        "guide-empty-string-is-not-null",
        {"detail": {"eventVersion": [None]}},
        AUTOSCALING_EVENT,
        False,
    ),
    (
        "guide-null-is-not-empty-string",
        {"detail": {"responseElements": [""]}},
        AUTOSCALING_EVENT,
        False,
    ),
    ("aws-empty-array-is-not-null", {"resources": [None]}, AUTOSCALING_EVENT, False),
    ("null-does-not-match-missing", {"detail": {"nope": [None]}}, AUTOSCALING_EVENT, False),
    # --- arrays ----------------------------------------------------------------------------
    (
        "guide-arrays-intersection",
        {
            "resources": [
                "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f",
                "arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f",
            ]
        },
        {
            "resources": [
                "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:eb56:autoScalingGroupName/A",
                "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f",
            ]
        },
        True,
    ),
    (
        "aws-arrays-no-intersection",
        {"resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f"]},
        {"resources": ["arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:x"]},
        False,
    ),
    ("nested-arrays-flattened", {"a": ["x"]}, {"a": [["y"], [["x"]]]}, True),
    (
        "ruler-array-of-objects",
        {"employees": {"firstName": ["Anna"]}},
        {"employees": [{"firstName": "John", "lastName": "Doe"}, {"firstName": "Anna"}]},
        True,
    ),
    (
        "ruler-array-consistency",
        {"employees": {"firstName": ["Anna"], "lastName": ["Jones"]}},
        {
            "employees": [
                {"firstName": "John", "lastName": "Doe"},
                {"firstName": "Anna", "lastName": "Smith"},
                {"firstName": "Peter", "lastName": "Jones"},
            ]
        },
        False,
    ),
    (
        "ruler-array-consistency-nested-arrays",
        {"employees": {"firstName": ["Anna"], "lastName": ["Smith"]}},
        {"employees": [[{"firstName": "John"}, {"firstName": "Anna", "lastName": "Smith"}], []]},
        True,
    ),
    (
        "array-consistency-across-or",
        {"a": {"b": ["1"]}, "$or": [{"a": {"c": ["2"]}}, {"x": ["y"]}]},
        {"a": [{"b": "1"}, {"c": "2"}]},
        False,
    ),
    (
        "array-consistency-across-or-same-element",
        {"a": {"b": ["1"]}, "$or": [{"a": {"c": ["2"]}}, {"x": ["y"]}]},
        {"a": [{"b": "1", "c": "2"}]},
        True,
    ),
    # --- prefix, suffix, equals-ignore-case, wildcard ---------------------------------------
    ("guide-prefix", {"time": [{"prefix": "2017-10-02"}]}, EC2_EVENT, True),
    ("guide-prefix-neg", {"time": [{"prefix": "2017-10-03"}]}, EC2_EVENT, False),
    (
        "guide-prefix-region",
        {"source": ["aws.autoscaling"], "region": [{"prefix": "eu-"}]},
        {"source": "aws.autoscaling", "region": "eu-west-1"},
        True,
    ),
    (
        "guide-prefix-ignore-case",
        {"detail": {"service": [{"prefix": {"equals-ignore-case": "EventB"}}]}},
        detail(service="eVeNtBridge"),
        True,
    ),
    ("prefix-not-on-numbers", {"n": [{"prefix": "1"}]}, {"n": 123}, False),
    ("guide-suffix", {"FileName": [{"suffix": ".png"}]}, {"FileName": "image.png"}, True),
    ("guide-suffix-neg", {"FileName": [{"suffix": ".png"}]}, {"FileName": "image.PNG"}, False),
    (
        "guide-suffix-ignore-case",
        {"detail": {"FileName": [{"suffix": {"equals-ignore-case": ".png"}}]}},
        detail(FileName="image.PNG"),
        True,
    ),
    (
        "guide-equals-ignore-case",
        {"Name": [{"equals-ignore-case": "alice"}]},
        {"Name": "ALICE"},
        True,
    ),
    (
        "equals-ignore-case-neg",
        {"Name": [{"equals-ignore-case": "alice"}]},
        {"Name": "alicia"},
        False,
    ),
    ("aws-ignore-case-empty", {"Name": [{"equals-ignore-case": ""}]}, {"Name": ""}, True),
    (
        "ruler-wildcard",
        {"source": [{"wildcard": "Simple*Service"}]},
        {"source": "SimpleQueueService"},
        True,
    ),
    (
        "wildcard-empty-run",
        {"source": [{"wildcard": "Simple*Service"}]},
        {"source": "SimpleService"},
        True,
    ),
    (
        "wildcard-neg",
        {"source": [{"wildcard": "Simple*Service"}]},
        {"source": "SimpleServices"},
        False,
    ),
    (
        "guide-wildcard-arn",
        {"EventBusArn": [{"wildcard": "arn:aws:events:us-east-1:*:event-bus/*"}]},
        {"EventBusArn": "arn:aws:events:us-east-1:123456789012:event-bus/myEventBus"},
        True,
    ),
    ("wildcard-star-alone", {"a": [{"wildcard": "*"}]}, {"a": ""}, True),
    ("wildcard-escaped-star", {"a": [{"wildcard": "a\\*b"}]}, {"a": "a*b"}, True),
    ("wildcard-escaped-star-is-literal", {"a": [{"wildcard": "a\\*b"}]}, {"a": "axb"}, False),
    ("wildcard-escaped-backslash", {"a": [{"wildcard": "a\\\\*"}]}, {"a": "a\\bc"}, True),
    ("wildcard-overlap", {"a": [{"wildcard": "ab*ba"}]}, {"a": "aba"}, False),
    ("wildcard-not-on-numbers", {"a": [{"wildcard": "1*"}]}, {"a": 12}, False),
    # --- anything-but -----------------------------------------------------------------------
    (
        "guide-anything-but",
        {"detail": {"state": [{"anything-but": "initializing"}]}},
        EC2_EVENT,
        True,
    ),
    (
        "guide-anything-but-neg",
        {"detail": {"state": [{"anything-but": "running"}]}},
        EC2_EVENT,
        False,
    ),
    (
        "guide-anything-but-number",
        {"detail": {"x-limit": [{"anything-but": 123}]}},
        EC2_EVENT,
        True,
    ),
    (
        "guide-anything-but-number-numeric",
        {"detail": {"x-limit": [{"anything-but": 301.8}]}},
        EC2_EVENT,
        False,
    ),
    (
        "guide-anything-but-list",
        {"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}},
        EC2_EVENT,
        True,
    ),
    (
        "guide-anything-but-number-list",
        {"detail": {"x-limit": [{"anything-but": [100, 200, 300]}]}},
        detail(**{"x-limit": 300.0}),
        False,
    ),
    (
        "aws-anything-but-zero",
        {"detail": {"x-limit": [{"anything-but": 0}]}},
        detail(**{"x-limit": 789}),
        True,
    ),
    (
        "guide-anything-but-prefix",
        {"source": [{"anything-but": {"prefix": "aws."}}]},
        {"source": "my.app"},
        True,
    ),
    (
        "guide-anything-but-prefix-neg",
        {"source": [{"anything-but": {"prefix": "aws."}}]},
        {"source": "aws.ec2"},
        False,
    ),
    (
        "aws-anything-but-prefix-list",
        {"detail": {"state": [{"anything-but": {"prefix": ["init", "test"]}}]}},
        detail(state="testing"),
        False,
    ),
    (
        "guide-anything-but-suffix",
        {"FileName": [{"anything-but": {"suffix": ".png"}}]},
        {"FileName": "a.txt"},
        True,
    ),
    (
        "guide-anything-but-suffix-neg",
        {"FileName": [{"anything-but": {"suffix": ".png"}}]},
        {"FileName": "a.png"},
        False,
    ),
    (
        "guide-anything-but-ignore-case",
        {"state": [{"anything-but": {"equals-ignore-case": "initializing"}}]},
        {"state": "INITIALIZING"},
        False,
    ),
    (
        "aws-anything-but-ignore-case-list",
        {"state": [{"anything-but": {"equals-ignore-case": ["Stopped", "Overloaded"]}}]},
        {"state": "running"},
        True,
    ),
    (
        "guide-anything-but-wildcard",
        {"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]},
        {"FilePath": "/usr/lib/x.so"},
        False,
    ),
    (
        "guide-anything-but-wildcard-other",
        {"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]},
        {"FilePath": "/usr/bin/x"},
        True,
    ),
    (
        "aws-anything-but-wildcard-empty",
        {"FilePath": [{"anything-but": {"wildcard": ""}}]},
        {"FilePath": "dir/init/file"},
        True,
    ),
    (
        "aws-anything-but-null",
        {"detail": {"state": [{"anything-but": "initializing"}]}},
        detail(state=None),
        True,
    ),
    (
        "aws-anything-but-list-null",
        {"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}},
        detail(state=None),
        True,
    ),
    (
        "aws-anything-but-missing",
        {"detail": {"state": [{"anything-but": "initializing"}]}},
        detail(),
        False,
    ),
    (
        "aws-anything-but-prefix-on-number",
        {"detail": {"state": [{"anything-but": {"prefix": "init"}}]}},
        detail(state=12),
        True,
    ),
    (
        "aws-anything-but-wildcard-on-number",
        {"detail": {"FilePath": [{"anything-but": {"wildcard": "*/dir/*"}}]}},
        detail(FilePath=123),
        True,
    ),
    (
        "aws-anything-but-rule-null",
        {"source": ["core"], "detail": {"command": [{"anything-but": ["no-message"]}]}},
        {"source": "core", "detail": {"command": None, "payload": "baz"}},
        True,
    ),
    ("anything-but-array-any-element", {"a": [{"anything-but": "x"}]}, {"a": ["x", "y"]}, True),
    ("anything-but-array-all-excluded", {"a": [{"anything-but": "x"}]}, {"a": ["x", "x"]}, False),
    ("anything-but-empty-array", {"a": [{"anything-but": "x"}]}, {"a": []}, False),
    ("anything-but-object", {"a": [{"anything-but": "x"}]}, {"a": {"b": "y"}}, False),
    # --- numeric ----------------------------------------------------------------------------
    (
        "guide-numeric",
        {
            "detail": {
                "c-count": [{"numeric": [">", 0, "<=", 5]}],
                "d-count": [{"numeric": ["<", 10]}],
                "x-limit": [{"numeric": ["=", 3.018e2]}],
            }
        },
        EC2_EVENT,
        True,
    ),
    (
        "numeric-upper-open",
        {"detail": {"c-count": [{"numeric": [">", 0, "<", 5]}]}},
        EC2_EVENT,
        False,
    ),
    ("numeric-ge", {"n": [{"numeric": [">=", 5]}]}, {"n": 5}, True),
    ("numeric-gt", {"n": [{"numeric": [">", 5]}]}, {"n": 5}, False),
    ("numeric-le", {"n": [{"numeric": ["<=", -1.5]}]}, {"n": -1.5}, True),
    ("aws-numeric-int-float", {"number": [{"numeric": [">", 100]}]}, {"number": 101.0}, True),
    ("aws-numeric-string", {"number": [{"numeric": [">", 100]}]}, {"number": "300"}, False),
    ("aws-numeric-null", {"number": [{"numeric": [">", 100]}]}, {"number": None}, False),
    ("numeric-bool", {"number": [{"numeric": [">", 0]}]}, {"number": True}, False),
    ("numeric-array", {"n": [{"numeric": [">", 10]}]}, {"n": [1, 2, 30]}, True),
    (
        "aws-or-numeric-anything-but",
        {
            "dynamodb": {
                "NewImage": {
                    "numericFilter": {"N": [{"numeric": [">", 100]}, {"anything-but": "101"}]}
                }
            }
        },
        {"dynamodb": {"NewImage": {"numericFilter": {"N": "42"}}}},
        True,
    ),
    # --- cidr ---------------------------------------------------------------------------------
    ("guide-cidr", {"detail": {"source-ip": [{"cidr": "10.0.0.0/24"}]}}, EC2_EVENT, True),
    ("guide-cidr-neg", {"detail": {"source-ip": [{"cidr": "10.0.1.0/24"}]}}, EC2_EVENT, False),
    ("cidr-host-bits-set", {"ip": [{"cidr": "10.0.0.7/8"}]}, {"ip": "10.200.3.4"}, True),
    (
        "aws-cidr-v6",
        {"ip": [{"cidr": "2001:db8:1234:1a00::/64"}]},
        {"ip": "2001:db8:1234:1a00::1"},
        True,
    ),
    (
        "aws-cidr-v6-neg",
        {"ip": [{"cidr": "2001:db8:1234:1a00::/64"}]},
        {"ip": "2001:db8:1234:1a01::1"},
        False,
    ),
    ("cidr-v4-pattern-v6-value", {"ip": [{"cidr": "0.0.0.0/0"}]}, {"ip": "::1"}, False),
    ("aws-cidr-on-number", {"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": 123}, False),
    ("cidr-not-an-ip", {"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": "10.0.0.x"}, False),
    # --- exists -------------------------------------------------------------------------------
    ("guide-exists-true", {"detail": {"c-count": [{"exists": True}]}}, EC2_EVENT, True),
    ("guide-exists-false-missing", {"detail": {"nope": [{"exists": False}]}}, EC2_EVENT, True),
    (
        "guide-exists-false-intermediate-node",
        {"detail": {"c-count": [{"exists": False}]}},
        {"detail": {"state": ["initializing", "running"], "c-count": {"c1": 100}}},
        True,
    ),
    (
        "aws-exists-true-intermediate-node",
        {"dynamodb": {"presentKey": [{"exists": True}]}},
        {"dynamodb": {"id": {"S": "test1234"}, "presentKey": {"S": "test123"}}},
        False,
    ),
    (
        "aws-exists-false-missing-parents",
        {"detail": {"level1": {"level2:": {"level3": {"level4": [{"exists": False}]}}}}},
        {"detail": {"level1": {"level2": "l2 value"}}},
        True,
    ),
    (
        "aws-exists-false-present",
        {"detail": {"level1": {"level2": {"level3": {"level4": [{"exists": False}]}}}}},
        {"detail": {"level1": {"level2": {"level3": {"level4": "l4 value"}}}}},
        False,
    ),
    (
        "aws-exists-true-missing",
        {"detail": {"state": [{"exists": True}]}},
        {"detail": {"c-count": {"c1": 100}}},
        False,
    ),
    ("aws-exists-true-empty-array", {"resources": [{"exists": True}]}, AUTOSCALING_EVENT, False),
    ("exists-false-empty-array", {"resources": [{"exists": False}]}, AUTOSCALING_EVENT, True),
    (
        "exists-true-null",
        {"detail": {"responseElements": [{"exists": True}]}},
        AUTOSCALING_EVENT,
        True,
    ),
    (
        "exists-false-null",
        {"detail": {"responseElements": [{"exists": False}]}},
        AUTOSCALING_EVENT,
        False,
    ),
    (
        "exists-true-empty-string",
        {"detail": {"eventVersion": [{"exists": True}]}},
        AUTOSCALING_EVENT,
        True,
    ),
    (
        "aws-or-exists",
        {
            "dynamodb": {
                "NewImage": {"homemade": {"S": [{"anything-but": ["roses"]}, {"exists": False}]}}
            }
        },
        {"dynamodb": {"NewImage": {"homemade": {"N": "789"}}}},
        True,
    ),
    (
        "aws-or-exists-parent",
        {
            "dynamodb": {
                "NewImage": {"homemade": {"S": [{"anything-but": ["roses"]}, {"exists": False}]}}
            }
        },
        {"dynamodb": {"NewImage": {"purchased": {"N": "789"}}}},
        True,
    ),
    (
        "exists-false-in-array-element",
        {"items": {"b": ["x"], "c": [{"exists": False}]}},
        {"items": [{"b": "x", "c": 1}, {"b": "x"}]},
        True,
    ),
    (
        "exists-false-in-array-pinned-element",
        {"items": {"b": ["x"], "c": [{"exists": False}]}},
        {"items": [{"b": "x", "c": 1}, {"b": "y"}]},
        False,
    ),
    # --- complex and $or --------------------------------------------------------------------
    (
        "guide-complex",
        {
            "time": [{"prefix": "2017-10-02"}],
            "detail": {
                "state": [{"anything-but": "initializing"}],
                "c-count": [{"numeric": [">", 0, "<=", 5]}],
                "d-count": [{"numeric": ["<", 10]}],
                "x-limit": [{"anything-but": [100, 200, 300]}],
                "source-ip": [{"cidr": "10.0.0.0/8"}],
            },
        },
        EC2_EVENT,
        True,
    ),
    (
        "ruler-or-normal",
        {
            "source": ["aws.cloudwatch"],
            "$or": [
                {"metricName": ["CPUUtilization", "ReadLatency"]},
                {"namespace": ["AWS/EC2", "AWS/ES"]},
            ],
        },
        {"source": "aws.cloudwatch", "namespace": "AWS/ES"},
        True,
    ),
    (
        "ruler-or-normal-neg",
        {
            "source": ["aws.cloudwatch"],
            "$or": [
                {"metricName": ["CPUUtilization", "ReadLatency"]},
                {"namespace": ["AWS/EC2", "AWS/ES"]},
            ],
        },
        {"source": "aws.ec2", "namespace": "AWS/ES"},
        False,
    ),
    (
        "ruler-or-parallel",
        {
            "$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}],
            "detail": {
                "$or": [
                    {"source": ["aws.cloudwatch"]},
                    {"detail-type": ["CloudWatch Alarm State Change"]},
                ]
            },
        },
        {"namespace": "AWS/EC2", "detail": {"detail-type": "CloudWatch Alarm State Change"}},
        True,
    ),
    (
        "ruler-or-parallel-neg",
        {
            "$or": [{"metricName": ["CPUUtilization"]}, {"namespace": ["AWS/EC2"]}],
            "detail": {
                "$or": [
                    {"source": ["aws.cloudwatch"]},
                    {"detail-type": ["CloudWatch Alarm State Change"]},
                ]
            },
        },
        {"namespace": "AWS/EC2", "detail": {"detail-type": "other"}},
        False,
    ),
    (
        "ruler-or-with-and-and-nested-or",
        {
            "source": ["aws.cloudwatch"],
            "$or": [
                {"metricName": ["CPUUtilization", "ReadLatency"]},
                {
                    "metricType": ["MetricType"],
                    "namespace": ["AWS/EC2", "AWS/ES"],
                    "$or": [{"metricId": [1234]}, {"spaceId": [1000]}],
                },
                {"scope": ["Service"]},
            ],
        },
        {
            "source": "aws.cloudwatch",
            "metricType": "MetricType",
            "namespace": "AWS/ES",
            "spaceId": 1000,
        },
        True,
    ),
    (
        "ruler-or-with-and-neg",
        {
            "source": ["aws.cloudwatch"],
            "$or": [
                {"metricName": ["CPUUtilization"]},
                {"metricType": ["MetricType"], "namespace": ["AWS/EC2"]},
            ],
        },
        {"source": "aws.cloudwatch", "metricType": "MetricType", "namespace": "AWS/ES"},
        False,
    ),
    (
        "ruler-or-as-field-name",
        {"source": ["aws.cloudwatch"], "$or": {"metricType": ["MetricType"]}},
        {"source": "aws.cloudwatch", "$or": {"metricType": "MetricType"}},
        True,
    ),
    (
        "ruler-or-reserved-names-as-field",
        {"$or": [{"prefix": "abc"}, {"suffix": "xyz"}]},
        {"$or": "abc-xyz-"},
        True,
    ),
    ("ruler-or-values-as-field", {"$or": ["a", "b"]}, {"$or": "b"}, True),
    # --- seed 000: Redshift Data API status change ------------------------------------------
    ("seed-000-completion-rule", SEED_RULE, redshift_event(), True),
    ("seed-000-completion-rule-failed-too", SEED_RULE, redshift_event("FAILED"), True),
    (
        "seed-000-other-principal",
        SEED_RULE,
        redshift_event(principal="arn:aws:iam::123456789012:user/myuser"),
        False,
    ),
    (
        "seed-000-finished-or-failed",
        {"source": ["aws.redshift-data"], "detail": {"state": ["FINISHED", "FAILED"]}},
        redshift_event("FINISHED"),
        True,
    ),
    (
        "seed-000-failed",
        {"source": ["aws.redshift-data"], "detail": {"state": ["FINISHED", "FAILED"]}},
        redshift_event("FAILED"),
        True,
    ),
    (
        "seed-000-aborted",
        {"source": ["aws.redshift-data"], "detail": {"state": ["FINISHED", "FAILED"]}},
        redshift_event("ABORTED"),
        False,
    ),
    (
        "seed-000-detail-type",
        {
            "source": ["aws.redshift-data"],
            "detail-type": ["Redshift Data Statement Status Change"],
            "detail": {"state": [{"anything-but": "ABORTED"}], "rows": [{"numeric": [">", 0]}]},
        },
        redshift_event("FINISHED"),
        True,
    ),
]


@pytest.mark.parametrize(
    ("pattern", "event", "expected"),
    [pytest.param(p, e, x, id=name) for name, p, e, x in MATCH_CASES],
)
def test_documented_matches(pattern: dict[str, Any], event: dict[str, Any], expected: bool) -> None:
    assert compile_pattern(pattern).matches(event) is expected
    # The same pattern given as JSON text behaves the same.
    assert compile_pattern(json.dumps(pattern)).matches(event) is expected


# (id, pattern, path, reason fragment)
INVALID_CASES: list[tuple[str, Any, str, str]] = [
    ("not-an-object", ["not", "a", "dict"], "", "Filter is not an object"),
    ("not-json", "{'bad': 'quotation'}", "", "not valid JSON"),
    ("json-array", '["a"]', "", "Filter is not an object"),
    ("nan", '{"a": [NaN]}', "", "NaN"),
    ("empty-object", {}, "", "Empty objects are not allowed"),
    ("empty-nested-object", {"detail": {}}, "detail", "Empty objects are not allowed"),
    (
        "aws-string-nolist",
        {"string": "my-value"},
        "string",
        '"string" must be an object or an array',
    ),
    ("aws-int-nolist", {"int": 42}, "int", '"int" must be an object or an array'),
    ("aws-empty-array", {"resources": []}, "resources", "Empty arrays are not allowed"),
    ("nested-array", {"a": [["x"]]}, "a[0]", "Match value must be String, number"),
    ("empty-expression", {"a": [{}]}, "a[0]", "Match expression name not found"),
    ("two-operators", {"a": [{"prefix": "x", "suffix": "y"}]}, "a[0]", "Only one key allowed"),
    (
        "aws-unknown-operator-case",
        {"detail": {"equal": [{"NUMERIC": ["=", 5]}]}},
        "detail.equal[0].NUMERIC",
        "Unrecognized match type NUMERIC",
    ),
    (
        "aws-exists-case",
        {"my_key": [{"EXISTS": True}]},
        "my_key[0].EXISTS",
        "Unrecognized match type EXISTS",
    ),
    ("exact-undocumented", {"a": [{"exact": "x"}]}, "a[0].exact", "Unrecognized match type exact"),
    (
        "aws-prefix-int",
        {"time": [{"prefix": 123}]},
        "time[0].prefix",
        "prefix match pattern must be a string",
    ),
    (
        "aws-prefix-list",
        {"time": [{"prefix": ["2022"]}]},
        "time[0].prefix",
        "prefix match pattern must be a string",
    ),
    (
        "prefix-unsupported-object",
        {"a": [{"prefix": {"wildcard": "x"}}]},
        "a[0].prefix.wildcard",
        "Unsupported prefix pattern",
    ),
    (
        "prefix-ignore-case-int",
        {"a": [{"prefix": {"equals-ignore-case": 1}}]},
        "a[0].prefix.equals-ignore-case",
        "must be a string",
    ),
    (
        "aws-suffix-int",
        {"FileName": [{"suffix": 123}]},
        "FileName[0].suffix",
        "suffix match pattern must be a string",
    ),
    (
        "aws-suffix-list",
        {"FileName": [{"suffix": [".png"]}]},
        "FileName[0].suffix",
        "suffix match pattern must be a string",
    ),
    (
        "aws-ignore-case-list",
        {"detail-type": [{"equals-ignore-case": ["ec2"]}]},
        "detail-type[0].equals-ignore-case",
        "equals-ignore-case match pattern must be a string",
    ),
    (
        "aws-ignore-case-object",
        {"detail-type": [{"equals-ignore-case": {"prefix": "ec2"}}]},
        "detail-type[0].equals-ignore-case",
        "must be a string",
    ),
    (
        "aws-wildcard-int",
        {"EventBusArn": [{"wildcard": 123}]},
        "EventBusArn[0].wildcard",
        "wildcard match pattern must be a string",
    ),
    (
        "aws-wildcard-list",
        {"EventBusArn": [{"wildcard": ["a*"]}]},
        "EventBusArn[0].wildcard",
        "wildcard match pattern must be a string",
    ),
    (
        "aws-wildcard-consecutive",
        {"EventBusArn": [{"wildcard": "arn:aws:events:us-east-1:**:event-bus/*"}]},
        "EventBusArn[0].wildcard",
        "Consecutive wildcard characters at pos 26",
    ),
    (
        "wildcard-bad-escape",
        {"a": [{"wildcard": "a\\b"}]},
        "a[0].wildcard",
        "Invalid escape character at pos 2",
    ),
    (
        "wildcard-trailing-backslash",
        {"a": [{"wildcard": "a\\"}]},
        "a[0].wildcard",
        "Invalid escape character",
    ),
    (
        "exists-not-bool",
        {"a": [{"exists": "true"}]},
        "a[0].exists",
        "exists match pattern must be either true or false",
    ),
    ("exists-number", {"a": [{"exists": 1}]}, "a[0].exists", "either true or false"),
    (
        "numeric-not-array",
        {"a": [{"numeric": 5}]},
        "a[0].numeric",
        "Value of numeric must be an array",
    ),
    ("numeric-empty", {"a": [{"numeric": []}]}, "a[0].numeric", "Invalid member in numeric match"),
    (
        "numeric-operator-not-string",
        {"a": [{"numeric": [5, ">"]}]},
        "a[0].numeric[0]",
        "Invalid member in numeric match: 5",
    ),
    (
        "numeric-unknown-operator",
        {"a": [{"numeric": ["!=", 5]}]},
        "a[0].numeric[0]",
        "Unrecognized numeric range operator: !=",
    ),
    (
        "numeric-string-operand",
        {"a": [{"numeric": [">", "5"]}]},
        "a[0].numeric[1]",
        "Value of > must be numeric",
    ),
    (
        "numeric-bool-operand",
        {"a": [{"numeric": ["=", True]}]},
        "a[0].numeric[1]",
        "Value of equals must be numeric",
    ),
    (
        "aws-numeric-missing-operand",
        {"detail": {"c-count": [{"numeric": [">", 0, "<"]}]}},
        "detail.c-count[0].numeric[3]",
        "Value of < must be numeric",
    ),
    (
        "aws-numeric-bad-order",
        {"detail": {"c-count": [{"numeric": [">", 0, ">", 0]}]}},
        "detail.c-count[0].numeric[2]",
        "Bad numeric range operator: >",
    ),
    (
        "numeric-upper-then-lower",
        {"a": [{"numeric": ["<", 5, ">", 0]}]},
        "a[0].numeric",
        "Too many elements in numeric expression",
    ),
    (
        "numeric-equals-extra",
        {"a": [{"numeric": ["=", 5, "<", 6]}]},
        "a[0].numeric",
        "Too many elements",
    ),
    (
        "numeric-range-not-string",
        {"a": [{"numeric": [">", 0, 5]}]},
        "a[0].numeric[2]",
        "Bad value in numeric range: 5",
    ),
    (
        "numeric-too-many-terms",
        {"a": [{"numeric": [">", 0, "<", 5, "<", 6]}]},
        "a[0].numeric",
        "Too many terms",
    ),
    (
        "numeric-bottom-above-top",
        {"a": [{"numeric": [">", 5, "<", 5]}]},
        "a[0].numeric",
        "Bottom must be less than top",
    ),
    (
        "aws-cidr-no-slash",
        {"ip": [{"cidr": "10.0.0.0"}]},
        "ip[0].cidr",
        "Malformed CIDR, one '/' required",
    ),
    (
        "aws-cidr-bad-mask",
        {"ip": [{"cidr": "10.0.0.0/xx"}]},
        "ip[0].cidr",
        "mask bits must be an integer",
    ),
    (
        "cidr-mask-too-big",
        {"ip": [{"cidr": "10.0.0.0/33"}]},
        "ip[0].cidr",
        "mask bits must be between 0 and 32",
    ),
    (
        "aws-cidr-bad-ip",
        {"ip": [{"cidr": "xx.11.xx/24"}]},
        "ip[0].cidr",
        "Nonstandard IP address: xx.11.xx",
    ),
    (
        "aws-cidr-bad-ip-v6",
        {"ip": [{"cidr": "xxxx:db8:1234:1a00::/64"}]},
        "ip[0].cidr",
        "Nonstandard IP address",
    ),
    ("aws-cidr-type", {"ip": [{"cidr": ["bad-type"]}]}, "ip[0].cidr", "must be a string"),
    (
        "anything-but-null",
        {"a": [{"anything-but": None}]},
        "a[0].anything-but",
        "must be an array or single string/number value",
    ),
    (
        "anything-but-bool",
        {"a": [{"anything-but": True}]},
        "a[0].anything-but",
        "must be an array or single string/number value",
    ),
    (
        "aws-anything-but-list-null",
        {"a": [{"anything-but": ["stopped", None]}]},
        "a[0].anything-but[1]",
        "start|null|boolean is not supported",
    ),
    (
        "anything-but-mixed-list",
        {"a": [{"anything-but": ["x", 1]}]},
        "a[0].anything-but",
        "mixed type is not supported",
    ),
    (
        "anything-but-empty-list",
        {"a": [{"anything-but": []}]},
        "a[0].anything-but",
        "Empty arrays are not allowed",
    ),
    (
        "anything-but-nested-list",
        {"a": [{"anything-but": [["x"]]}]},
        "a[0].anything-but[0]",
        "not supported",
    ),
    (
        "anything-but-unsupported-object",
        {"a": [{"anything-but": {"numeric": [">", 1]}}]},
        "a[0].anything-but.numeric",
        "Unsupported anything-but pattern: numeric",
    ),
    (
        "anything-but-empty-object",
        {"a": [{"anything-but": {}}]},
        "a[0].anything-but",
        "Anything-But expression name not found",
    ),
    (
        "aws-anything-but-prefix-int",
        {"detail": {"state": [{"anything-but": {"prefix": 123}}]}},
        "detail.state[0].anything-but.prefix",
        "prefix/suffix match pattern must be a string",
    ),
    (
        "aws-anything-but-prefix-list-int",
        {"detail": {"state": [{"anything-but": {"prefix": [123, "test"]}}]}},
        "detail.state[0].anything-but.prefix[0]",
        "prefix/suffix match pattern must be a string",
    ),
    (
        "aws-anything-but-prefix-empty",
        {"a": [{"anything-but": {"prefix": ""}}]},
        "a[0].anything-but.prefix",
        "Null prefix/suffix not allowed",
    ),
    (
        "aws-anything-but-suffix-int",
        {"detail": {"FileName": [{"anything-but": {"suffix": 123}}]}},
        "detail.FileName[0].anything-but.suffix",
        "prefix/suffix match pattern must be a string",
    ),
    (
        "aws-anything-but-suffix-list-int",
        {"d": {"F": [{"anything-but": {"suffix": [123, ".txt"]}}]}},
        "d.F[0].anything-but.suffix[0]",
        "prefix/suffix match pattern must be a string",
    ),
    (
        "aws-anything-but-prefix-ignore-case",
        {"d": {"F": [{"anything-but": {"prefix": {"equals-ignore-case": "file"}}}]}},
        "d.F[0].anything-but.prefix",
        "Value of anything-but must be an array or single string/number value.",
    ),
    (
        "aws-anything-but-suffix-ignore-case",
        {"d": {"F": [{"anything-but": {"suffix": {"equals-ignore-case": ".png"}}}]}},
        "d.F[0].anything-but.suffix",
        "Value of anything-but must be an array",
    ),
    (
        "aws-anything-but-ignore-case-int",
        {"d": {"s": [{"anything-but": {"equals-ignore-case": 123}}]}},
        "d.s[0].anything-but.equals-ignore-case",
        "number|start|null|boolean is not supported",
    ),
    (
        "aws-anything-but-ignore-case-list-int",
        {"d": {"s": [{"anything-but": {"equals-ignore-case": [123, 456]}}]}},
        "d.s[0].anything-but.equals-ignore-case[0]",
        "number|start|null|boolean is not supported",
    ),
    (
        "aws-anything-but-wildcard-int",
        {"d": {"F": [{"anything-but": {"wildcard": 123}}]}},
        "d.F[0].anything-but.wildcard",
        "wildcard match pattern must be a string",
    ),
    (
        "aws-anything-but-wildcard-list-int",
        {"d": {"s": [{"anything-but": {"wildcard": [123, "*/dir/*"]}}]}},
        "d.s[0].anything-but.wildcard[0]",
        "wildcard match pattern must be a string",
    ),
    (
        "anything-but-wildcard-consecutive",
        {"a": [{"anything-but": {"wildcard": ["ok*", "**"]}}]},
        "a[0].anything-but.wildcard[1]",
        "Consecutive wildcard characters at pos 1",
    ),
    ("or-single-branch", {"$or": [{"a": ["x"]}]}, "$or", "$or needs at least 2 objects"),
    ("or-empty", {"$or": []}, "$or", "$or needs at least 2 objects"),
    ("or-not-objects", {"$or": ["a", {"b": ["x"]}]}, "$or[0]", "Only objects are allowed"),
    ("or-empty-branch", {"$or": [{}, {"a": ["x"]}]}, "$or[0]", "Empty objects are not allowed"),
    (
        "or-reserved-field",
        {"$or": [{"numeric": 123}, {"prefix": "abc"}]},
        "$or[0].numeric",
        "reserved name",
    ),
    (
        "or-bad-branch-value",
        {"$or": [{"a": ["x"]}, {"b": [{"prefix": 1}]}]},
        "$or[1].b[0].prefix",
        "prefix match pattern must be a string",
    ),
    (
        "key-with-dot-in-path",
        {"detail": {"a.b": [{"prefix": 1}]}},
        'detail["a.b"][0].prefix',
        "must be a string",
    ),
    ("non-string-key", {1: ["x"]}, "", "Field names must be strings"),
    ("set-value", {"a": {"x"}}, "a", "set is not a JSON value"),
    ("infinite-number", {"a": [float("inf")]}, "a[0]", "inf is not a JSON number"),
]


@pytest.mark.parametrize(
    ("pattern", "path", "reason"),
    [pytest.param(p, path, r, id=name) for name, p, path, r in INVALID_CASES],
)
def test_invalid_patterns(pattern: Any, path: str, reason: str) -> None:
    with pytest.raises(InvalidPattern) as caught:
        compile_pattern(pattern)
    error = caught.value
    assert error.details["path"] == path
    assert reason in error.details["reason"]
    assert reason in error.message


def test_invalid_pattern_is_an_unprocessable_entity() -> None:
    with pytest.raises(errors.UnprocessableEntity) as caught:
        compile_pattern({"a": []})
    assert caught.value.code == "invalid_pattern"
    assert caught.value.http_status == 422
    assert caught.value.to_dict()["details"] == {
        "path": "a",
        "reason": "Empty arrays are not allowed",
    }


def test_pattern_length_limit() -> None:
    values = [f"value-{i:04d}" for i in range(200)]
    pattern = {"source": values}
    text = json.dumps(pattern, separators=(",", ":"))
    assert len(text) > MAX_PATTERN_LENGTH
    for given_as in (pattern, text):
        with pytest.raises(InvalidPattern) as caught:
            compile_pattern(given_as)
        assert caught.value.details["path"] == ""
        assert f"the limit is {MAX_PATTERN_LENGTH}" in caught.value.details["reason"]
    assert compile_pattern(pattern, max_length=4096).matches({"source": "value-0199"})


def test_depth_limit() -> None:
    deep: dict[str, Any] = {"leaf": ["x"]}
    for _ in range(150):
        deep = {"a": deep}
    with pytest.raises(InvalidPattern, match="nests more than"):
        compile_pattern(deep)
    with pytest.raises(InvalidPattern, match="nests more than"):
        compile_pattern(json.dumps(deep), max_length=10_000)


def test_or_expansion_limit() -> None:
    pattern: dict[str, Any] = {}
    node = pattern
    for i in range(11):  # 2 ** 11 alternatives
        node["$or"] = [{f"a{i}": ["x"]}, {f"b{i}": ["y"]}]
        node["n"] = {}
        node = node["n"]
    node["leaf"] = ["z"]
    with pytest.raises(InvalidPattern, match="more than 1000 alternatives"):
        compile_pattern(pattern, max_length=100_000)


def test_pattern_value_object() -> None:
    a = compile_pattern({"source": ["x"], "detail": {"n": [1]}})
    b = compile_pattern('{"source": ["x"], "detail": {"n": [1]}}')
    assert isinstance(a, Pattern)
    assert a == b and hash(a) == hash(b)
    assert a.json == '{"source":["x"],"detail":{"n":[1]}}'
    assert a.source == {"source": ["x"], "detail": {"n": [1]}}
    assert a.source is not b.source
    assert repr(a) == 'Pattern({"source":["x"],"detail":{"n":[1]}})'
    assert a != compile_pattern({"source": ["y"]})


def test_or_override_keeps_last_value_like_event_ruler() -> None:
    pattern = compile_pattern({"a": ["1"], "$or": [{"a": ["2"]}, {"b": ["3"]}]})
    assert pattern.matches({"a": "2"})  # the first alternative overrides a
    assert pattern.matches({"a": "1", "b": "3"})
    assert not pattern.matches({"a": "1"})
    repeated = compile_pattern('{"a": ["1"], "a": ["2"]}')
    assert repeated.matches({"a": "2"}) and not repeated.matches({"a": "1"})


def test_non_object_events_never_match() -> None:
    pattern = compile_pattern({"a": [{"exists": False}]})
    assert pattern.matches({})
    for event in (None, [], "x", 1, [{"a": 1}]):
        assert pattern.matches(event) is False


def test_hand_built_events_with_tuples_and_subclasses() -> None:
    class Tag(str):
        pass

    pattern = compile_pattern({"tags": ["b"], "items": {"id": [2]}})
    assert pattern.matches({"tags": ("a", Tag("b")), "items": ({"id": 1}, {"id": 2})})


# --------------------------------------------------------------------------------------------
# Properties

#: The machines running the suite are shared and busy: no per-example deadline, no slowness check.
relaxed = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

_keys = st.text(alphabet="abcxyz-_", min_size=1, max_size=4)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
_json = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=4),
    max_leaves=20,
)
_events = st.dictionaries(_keys, _json, max_size=6)


def _pattern_from(event: dict[str, Any], choose: st.DataObject) -> dict[str, Any] | None:
    """A pattern of exact values taken from ``event``: fields chosen at random, arrays' elements too."""
    pattern: dict[str, Any] = {}
    for key, value in event.items():
        if not choose.draw(st.booleans()):
            continue
        if isinstance(value, dict):
            sub = _pattern_from(value, choose)
            if sub:
                pattern[key] = sub
        elif isinstance(value, list):
            leaves = [v for v in value if not isinstance(v, dict | list)]
            if leaves:
                pattern[key] = [choose.draw(st.sampled_from(leaves))]
        else:
            pattern[key] = [value]
    return pattern or None


@relaxed
@given(_events, st.data())
def test_a_pattern_built_from_an_event_matches_it(
    event: dict[str, Any], data: st.DataObject
) -> None:
    pattern = _pattern_from(event, data)
    assume(pattern is not None)
    assert compile_pattern(pattern, max_length=100_000).matches(event)


@relaxed
@given(
    st.one_of(st.text(max_size=10), st.integers(), st.floats(allow_nan=False, allow_infinity=False))
)
def test_anything_but_never_matches_the_excluded_value(value: Any) -> None:
    pattern = compile_pattern({"detail": {"field": [{"anything-but": [value]}]}})
    assert not pattern.matches({"detail": {"field": value}})
    assert not pattern.matches({"detail": {"field": [value, value]}})
    if isinstance(value, str):
        assert pattern.matches({"detail": {"field": value + "x"}})


@relaxed
@given(st.text(max_size=20), st.integers(min_value=0, max_value=20))
def test_prefixes_and_suffixes_of_a_string_match_it(value: str, cut: int) -> None:
    cut = min(cut, len(value))
    assert compile_pattern({"f": [{"prefix": value[:cut]}]}).matches({"f": value})
    assert compile_pattern({"f": [{"suffix": value[cut:]}]}).matches({"f": value})
    assert not compile_pattern({"f": [{"anything-but": {"prefix": value[:cut] or "x"}}]}).matches(
        {"f": value[:cut] or "x"}
    )


@relaxed
@given(st.text(alphabet="abcXYZ-.*\\", max_size=12), st.integers(min_value=0, max_value=12))
def test_ascii_case_is_ignored(value: str, cut: int) -> None:
    assert compile_pattern({"f": [{"equals-ignore-case": value.upper()}]}).matches({"f": value})
    head = value[: min(cut, len(value))]
    assert compile_pattern({"f": [{"prefix": {"equals-ignore-case": head.swapcase()}}]}).matches(
        {"f": value}
    )


@relaxed
@given(st.text(max_size=15), st.sets(st.integers(min_value=0, max_value=15), max_size=4))
def test_a_wildcard_made_from_a_string_matches_it(value: str, stars: set[int]) -> None:
    pieces: list[str] = []
    for i, char in enumerate(value):
        if i in stars:
            pieces.append("*")
        pieces.append("\\" + char if char in "*\\" else char)
    text = "".join(pieces).replace("**", "*")
    assert compile_pattern({"f": [{"wildcard": text}]}).matches({"f": value})
    assert not compile_pattern({"f": [{"anything-but": {"wildcard": text}}]}).matches({"f": value})


@relaxed
@given(
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.one_of(
        st.integers(min_value=-(10**6), max_value=10**6),
        st.floats(allow_nan=False, allow_infinity=False),
    ),
)
def test_numeric_ranges_compare_numerically(low: float, high: float, value: float) -> None:
    assume(low < high)
    pattern = compile_pattern({"n": [{"numeric": [">=", low, "<", high]}]})
    assert pattern.matches({"n": value}) is (low <= value < high)
    assert compile_pattern({"n": [{"numeric": ["=", value]}]}).matches({"n": float(value)})


_small_keys = st.sampled_from(["a", "b", "c"])
_small_values = st.sampled_from(["1", "2", 3, None])
_small_leaf = st.one_of(
    st.lists(_small_values, min_size=1, max_size=2),
    st.sampled_from(
        [[{"exists": True}], [{"exists": False}], [{"anything-but": "1"}], [{"prefix": "1"}]]
    ),
)
_small_patterns = st.dictionaries(
    _small_keys,
    st.one_of(_small_leaf, st.dictionaries(_small_keys, _small_leaf, min_size=1, max_size=2)),
    min_size=1,
    max_size=3,
)
_small_events = st.dictionaries(
    _small_keys,
    st.one_of(
        _small_values,
        st.lists(_small_values, max_size=2),
        st.dictionaries(
            _small_keys, st.one_of(_small_values, st.lists(_small_values, max_size=2)), max_size=2
        ),
        st.lists(st.dictionaries(_small_keys, _small_values, max_size=2), max_size=2),
    ),
    max_size=3,
)


@relaxed
@given(_small_patterns, _small_patterns, _small_events)
def test_or_matches_when_either_branch_matches(
    a: dict[str, Any], b: dict[str, Any], event: dict[str, Any]
) -> None:
    either = compile_pattern({"$or": [a, b]}).matches(event)
    assert either is (compile_pattern(a).matches(event) or compile_pattern(b).matches(event))


SAMPLE_PATTERNS = [case[1] for case in MATCH_CASES] + [
    {"a": {"b": {"c": [{"exists": False}, {"numeric": [">", 0]}]}}, "x": [{"cidr": "::/0"}]},
    {
        "a": [
            {"wildcard": "*a*b*"},
            {"equals-ignore-case": "Q"},
            {"suffix": {"equals-ignore-case": "z"}},
        ]
    },
]


@relaxed
@given(st.sampled_from(SAMPLE_PATTERNS), st.one_of(_json, _events))
def test_matching_never_raises(pattern: dict[str, Any], event: Any) -> None:
    assert compile_pattern(pattern, max_length=100_000).matches(event) in (True, False)


@relaxed
@given(_json)
def test_compiling_only_ever_raises_invalid_pattern(pattern: Any) -> None:
    try:
        compile_pattern(pattern, max_length=100_000)
    except InvalidPattern as error:
        assert set(error.details) == {"path", "reason"}
