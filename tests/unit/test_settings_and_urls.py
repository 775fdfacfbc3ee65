from __future__ import annotations

from pathlib import Path

import pytest

from sqltide import errors
from sqltide.engines import engine_from_url
from sqltide.settings import load_settings
from sqltide.storage import storage_from_url
from sqltide.store import store_from_url
from sqltide.urls import path_of


def test_defaults_live_under_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SQLTIDE_HOME", str(tmp_path))
    s = load_settings()
    assert s.store_url == f"sqlite:///{tmp_path}/state.db"
    assert s.storage_url == f"file:///{tmp_path}/files"
    assert s.warehouse_urls == {"default": f"duckdb:///{tmp_path}/warehouse.duckdb"}


def test_more_warehouses_from_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQLTIDE_WAREHOUSES", '{"scratch": "duckdb:///:memory:"}')
    assert load_settings().warehouse_urls["scratch"] == "duckdb:///:memory:"


@pytest.mark.parametrize(
    ("name", "value"),
    [("SQLTIDE_PORT", "eighty"), ("SQLTIDE_WORKER_CONCURRENCY", "0"), ("SQLTIDE_WAREHOUSES", "{")],
)
def test_bad_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(errors.ConfigError) as info:
        load_settings()
    assert name in info.value.message


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///rel.db", "rel.db"),
        ("sqlite:////abs/x.db", "/abs/x.db"),
        ("duckdb:///:memory:", ":memory:"),
        ("duckdb:///", ":memory:"),
    ],
)
def test_path_of(url: str, path: str) -> None:
    assert path_of(url) == path


@pytest.mark.parametrize(
    ("factory", "url", "hint"),
    [
        (store_from_url, "sqlit:///x.db", "sqlite"),
        (lambda u: engine_from_url("w", u), "duckd:///x.db", "duckdb"),
        (storage_from_url, "fil:///tmp/x", "file"),
    ],
)
def test_unknown_scheme_suggests_the_closest(factory, url: str, hint: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(errors.ConfigError) as info:
        factory(url)
    assert f"Did you mean {hint!r}" in info.value.message


@pytest.mark.parametrize("url", ["no-scheme", "sqlite://relative-without-third-slash"])
def test_malformed_urls(url: str) -> None:
    with pytest.raises(errors.ConfigError):
        store_from_url(url)


def test_error_codes_round_trip() -> None:
    for cls in (
        errors.StatementNotFound,
        errors.SessionBusy,
        errors.SqlTooLarge,
        errors.ResultExpired,
    ):
        assert errors.error_class_for(cls.code) is cls
    assert errors.error_class_for("no-such-code") is errors.SqltideError


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("sqlite:////abs/state.db", "sqlite:////abs/state.db"),
        ("duckdb:///:memory:", "duckdb:///:memory:"),
        ("postgresql://app@db:5432/x", "postgresql://app@db:5432/x"),
        ("postgresql://app:s3cret@db:5432/x", "postgresql://app:***@db:5432/x"),
        ("postgresql://db/x?user=app&password=s3cret", "postgresql://db/x?user=app&password=***"),
        ("smtp://u:p%40ss@mail:587?from=a@b", "smtp://u:***@mail:587?from=a@b"),
    ],
)
def test_one_redaction_hides_every_password_and_keeps_the_rest(url: str, shown: str) -> None:
    from sqltide.urls import redact_url

    assert redact_url(url) == shown


def test_workflow_modules_are_a_list_or_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQLTIDE_WORKFLOWS", "flows.py, pkg.more_flows")
    assert load_settings().workflows == ["flows.py", "pkg.more_flows"]
    monkeypatch.setenv("SQLTIDE_WORKFLOWS", '["a b.py", "c"]')
    assert load_settings().workflows == ["a b.py", "c"]
    assert load_settings().workflow_retention_seconds == 14 * 86_400
    monkeypatch.setenv("SQLTIDE_WORKFLOW_TIMEOUT_SECONDS", str(367 * 86_400))
    with pytest.raises(errors.ConfigError, match="SQLTIDE_WORKFLOW_TIMEOUT_SECONDS"):
        load_settings()
