"""Accept only what can be served: a property of the whole API, checked on a live server.

For generated statements, events, rules and topics (huge integers, NaN, lone surrogates, NUL
and control characters, nesting far past orjson's 255 levels, odd names), every request is
either refused with a 4xx, or accepted and then shown with a 2xx by every endpoint that shows
it: describe, list and result pages; the event archive and deliveries; rules and topics.

Bodies are sent as raw JSON written by the standard library (which writes NaN, integers of any
size and ``\\ud800`` escapes), through plain httpx, so no client-side check hides what the
server does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from conftest import make_settings
from sqltide.server import ServerThread
from sqltide.settings import Settings

#: Characters that broke, or could break, some encoder or store on the way.
AWKWARD = ["\ud800", "\udfff", "\x00", "\x1f", "\x7f", "\x85", "\u2028", "\ufeff", "😀"]
EXAMPLES = 60
PROPERTY = hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for n in range(depth):
        value = {"k": value} if n % 2 else [value]
    return value


texts = st.text(st.one_of(st.characters(), st.sampled_from(AWKWARD)), max_size=12)
#: Values past some encoder's or engine's limits, drawn often (random ones rarely are).
EDGES: list[Any] = [
    2**63,
    -(2**63) - 1,
    2**80,
    float("nan"),
    float("inf"),
    "\ud800",
    "a\x00b",
    "\udfff\ud800",
]
scalars = st.one_of(
    st.sampled_from(EDGES),
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
)
json_values = st.one_of(
    st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=3), st.dictionaries(texts, children, max_size=3)
        ),
        max_leaves=8,
    ),
    st.builds(nested, st.sampled_from([1, 63, 64, 65, 100, 256, 300]), scalars),
)
objects = st.dictionaries(texts, json_values, max_size=3) | st.builds(
    lambda d: {"deep": nested(d)}, st.sampled_from([62, 63, 64, 254, 300])
)
valid_names = st.from_regex(r"\A[A-Za-z0-9._\-]{1,64}\Z")
names = st.one_of(
    valid_names,
    valid_names,
    st.text(
        st.one_of(st.characters(exclude_categories=["Cs"]), st.sampled_from(AWKWARD[2:])),
        min_size=1,
        max_size=70,
    ),
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """SQLite only: the property is about what the API takes and shows; both stores keep the
    same text (tests/integration/test_unrenderable_rows.py covers each store's old rows)."""
    return make_settings(
        tmp_path,
        store=f"sqlite:///{tmp_path / 'home' / 'state.db'}",
        max_wait_seconds=10.0,
        bus_poll_seconds=0.2,
    )


@pytest.fixture
def http(server: ServerThread, api_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url,
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
        timeout=30,
    ) as c:
        yield c


def send(http: httpx.Client, method: str, path: str, body: Any) -> httpx.Response:
    """Raw JSON as the standard library writes it: NaN, big integers, ``\\ud800`` escapes."""
    r = http.request(method, path, content=json.dumps(body).encode())
    assert r.status_code < 500, (method, path, r.status_code, r.text)
    return r


def shown(http: httpx.Client, path: str, **params: Any) -> Any:
    r = http.get(path, params=params)
    assert 200 <= r.status_code < 300, (path, r.status_code, r.text)
    return r.json()


# -- statements --------------------------------------------------------------------------------
statement_bodies = st.one_of(
    st.fixed_dictionaries(
        {"sql": st.just("select :p as v"), "parameters": st.fixed_dictionaries({"p": scalars})}
    ),
    st.fixed_dictionaries({"sql": st.just("select :p as v"), "parameters": objects}),
    st.fixed_dictionaries(
        {"sql": st.builds(lambda t: f"select 1 as v -- {t}", texts)},
        optional={"statement_name": texts, "client_token": texts},
    ),
    st.fixed_dictionaries(
        {
            "sqls": st.lists(
                st.builds(lambda t: f"select '{t}' as v", texts), min_size=1, max_size=3
            )
        },
        optional={"parameters": objects},
    ),
)


def test_a_statement_is_refused_or_served_everywhere(http: httpx.Client) -> None:
    @given(body=statement_bodies)
    @example(body={"sql": "select :p as v", "parameters": {"p": 2**80}})
    @example(body={"sql": "select :p as v", "parameters": {"p": "\ud800"}})
    @example(body={"sql": "select 1 as v", "statement_name": "\ud800"})
    @PROPERTY
    def check(body: dict[str, Any]) -> None:
        path = "/v1/statements/batch" if "sqls" in body else "/v1/statements"
        r = send(http, "POST", path, body)
        if r.status_code >= 400:
            return
        sid = r.json()["id"]
        ended = shown(http, f"/v1/statements/{sid}", wait=10)
        assert ended["status"] in ("FINISHED", "FAILED"), ended
        shown(http, "/v1/statements", max_results=5)
        for one in [ended, *(ended.get("sub_statements") or [])]:
            shown(http, f"/v1/statements/{one['id']}")
            if one["status"] == "FINISHED" and one["has_result_set"] and not one.get("is_batch"):
                shown(http, f"/v1/statements/{one['id']}/result")
                r = http.get(f"/v1/statements/{one['id']}/result", params={"format": "csv"})
                assert r.status_code == 200, r.text

    check()


# -- events ------------------------------------------------------------------------------------
entries = st.fixed_dictionaries(
    {"source": texts | st.just("app.orders"), "detail_type": texts | st.just("Order")},
    optional={
        "detail": objects | json_values,
        "resources": st.lists(texts, max_size=2),
        "time": st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.integers(min_value=-(2**70), max_value=2**70),
            st.sampled_from(["2026-01-01T00:00:00Z", "9999-12-31T23:59:59-14:00", "0001-01-01"]),
        ),
    },
)


def test_an_event_is_refused_or_served_everywhere(http: httpx.Client) -> None:
    # Every event goes to an (empty) topic and to an event target, through input shaping, so
    # the deliveries hold what was put as well.
    send(http, "PUT", "/v1/topics/sink", {"subscriptions": []})
    rule = {
        "event_pattern": {"source": [{"prefix": ""}]},
        "targets": [
            {"id": "topic", "kind": "topic", "topic": "sink"},
            {
                "id": "shaped",
                "kind": "topic",
                "topic": "sink",
                "input_transformer": {
                    "input_paths_map": {"d": "$.detail"},
                    "input_template": '{"wrapped": {"again": <d>}, "event": <aws.events.event>}',
                },
            },
        ],
    }
    assert send(http, "PUT", "/v1/rules/everything", rule).status_code == 201

    @given(batch=st.lists(entries, min_size=1, max_size=3))
    @example(batch=[{"source": "app", "detail_type": "deep", "detail": {"d": nested(300)}}])
    @example(batch=[{"source": "app", "detail_type": "key", "detail": {"\ud800": 1}}])
    @PROPERTY
    def check(batch: list[dict[str, Any]]) -> None:
        r = send(http, "POST", "/v1/events", {"entries": batch})
        if r.status_code >= 400:
            return
        shown(http, "/v1/events", max_results=1000)
        shown(http, "/v1/deliveries", max_results=1000)

    check()
    # Deliveries run meanwhile: none may fail as an internal error.
    for d in shown(http, "/v1/deliveries", max_results=1000)["deliveries"]:
        assert (d["last_error"] or {}).get("code") != "internal_error", d


# -- rules and topics --------------------------------------------------------------------------
targets = st.fixed_dictionaries(
    {"kind": st.just("event")},
    optional={
        "id": valid_names,
        "input": json_values,
        "source": texts,
        "input_transformer": st.fixed_dictionaries(
            {
                "input_paths_map": st.just({"d": "$.detail"}),
                "input_template": st.one_of(
                    texts.filter(lambda t: "<" not in t),
                    st.just('{"d": <d>, "e": <aws.events.event>}'),
                    st.builds(lambda d: "[" * d + "1" + "]" * d, st.sampled_from([3, 70, 300])),
                ),
            }
        ),
    },
)
rule_extras = {
    "description": st.one_of(texts, texts, json_values),
    "state": st.one_of(st.just("ENABLED"), st.just("DISABLED"), texts),
}
rule_bodies = st.one_of(
    st.fixed_dictionaries(
        {
            "targets": st.lists(targets, min_size=1, max_size=2),
            "event_pattern": st.one_of(
                st.fixed_dictionaries({"source": st.lists(scalars, min_size=1, max_size=2)}),
                st.fixed_dictionaries({"detail": objects}),
                json_values,
            ),
        },
        optional=rule_extras,
    ),
    st.fixed_dictionaries(
        {
            "targets": st.lists(targets, min_size=1, max_size=2),
            "schedule": st.just("rate(5 minutes)") | texts,
        },
        optional={"timezone": st.just("Europe/Paris") | texts, **rule_extras},
    ),
)


def test_a_rule_is_refused_or_served_everywhere(http: httpx.Client) -> None:
    @given(name=names, body=rule_bodies)
    @example(
        name="r",
        body={
            "schedule": "rate(1 hour)",
            "description": {"not": "text"},
            "targets": [{"kind": "event"}],
        },
    )
    @example(
        name="r",
        body={
            "event_pattern": {"detail": {"n": [2**80]}},
            "targets": [{"kind": "event", "input": nested(300)}],
        },
    )
    @PROPERTY
    def check(name: str, body: dict[str, Any]) -> None:
        path = "/v1/rules/" + quote(name, safe="")
        r = send(http, "PUT", path, body)
        if r.status_code >= 400:
            return
        shown(http, path)
        shown(http, "/v1/rules")

    check()


topic_bodies = st.fixed_dictionaries(
    {},
    optional={
        "display_name": json_values,
        "subscriptions": st.lists(
            st.fixed_dictionaries(
                {"protocol": st.sampled_from(["webhook", "email"]), "endpoint": texts},
                optional={"filter_policy": objects, "id": names},
            ),
            max_size=2,
        ),
        "extra": json_values,
    },
)


def test_a_topic_is_refused_or_served_everywhere(http: httpx.Client) -> None:
    @given(name=names, body=topic_bodies)
    @example(name="t", body={"display_name": "\ud800"})
    @PROPERTY
    def check(name: str, body: dict[str, Any]) -> None:
        path = "/v1/topics/" + quote(name, safe="")
        r = send(http, "PUT", path, body)
        if r.status_code >= 400:
            return
        shown(http, path)
        shown(http, "/v1/topics")

    check()
