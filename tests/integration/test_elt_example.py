"""examples/nyc-taxi-elt on PostgreSQL: the same pipeline file, PostgreSQL as state store and
as warehouse (materialized view + ``run_elt_process`` procedure + COPY), mail through a real
SMTP server on loopback. The embedded default is the acceptance test of ``sqltide demo``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import psycopg
import pytest
from rich.console import Console

import pgtools
from sqltide.demos.elt import ELT_PRINCIPAL, example_dir, run_elt_demo
from sqltide.pipeline import load_pipeline

EXAMPLE = example_dir()


def test_the_example_pipeline_file_is_what_the_seed_builds(tmp_path: Path) -> None:
    pipeline = load_pipeline(EXAMPLE / "pipeline.yaml", environ={"TAXI_DATA": "/data/t.psv"})
    schedule = pipeline.rules["nyc-taxi-elt-schedule"]
    assert schedule["schedule"] == "cron(0 11 ? * MON-FRI *)"  # the seed's ExecutionSchedule
    [run] = schedule["targets"]
    assert run["kind"] == "sql" and run["with_event"] is True
    assert run["parameters"] == {"source": "/data/t.psv"}
    assert len(run["sqls"]) == 4  # the DuckDB script: a batch, one transaction
    completed = pipeline.rules["nyc-taxi-elt-completed"]
    # the seed's own pattern: source + detail.principal, no state filter
    assert completed["event_pattern"] == {
        "source": ["aws.redshift-data"],
        "detail": {"principal": [ELT_PRINCIPAL]},
    }
    assert completed["targets"][0]["input_transformer"]["input_paths_map"]["body"] == "$.detail"
    on_pg = load_pipeline(
        EXAMPLE / "pipeline.yaml",
        environ={
            "TAXI_DATA": "/d",
            "ELT_SQL": "sql/postgres/elt.sql",
            "ELT_SCHEDULE": "rate(5 minutes)",
        },
    )
    run = on_pg.rules["nyc-taxi-elt-schedule"]["targets"][0]
    assert run["sql"].endswith("\nCALL run_elt_process(:source)")
    assert on_pg.rules["nyc-taxi-elt-schedule"]["schedule"] == "rate(5 minutes)"


def test_the_pipeline_needs_its_data_file() -> None:
    from sqltide.pipeline import PipelineError

    with pytest.raises(PipelineError) as info:
        load_pipeline(EXAMPLE / "pipeline.yaml", environ={})
    [problem] = info.value.problems
    assert problem.path == "rules.nyc-taxi-elt-schedule.targets[0].parameters.source"
    assert "TAXI_DATA" in problem.message


@pytest.mark.slow
def test_the_pipeline_end_to_end_on_postgresql(tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    with pgtools.fresh_database() as store_url, pgtools.fresh_database() as warehouse_url:
        code = run_elt_demo(
            console,
            rows=5_000,
            home=tmp_path / "demo",
            store=store_url,
            warehouse=warehouse_url,
            timeout=120,
        )
        text = out.getvalue()
        assert code == 0, text
        assert "UNEXPECTED" not in text, text
        with psycopg.connect(warehouse_url) as con:
            trips = con.execute("SELECT count(*) FROM nyc_yellow_taxi").fetchone()
            months = con.execute(
                "SELECT count(*), sum(total_trips) FROM nyc_yellow_taxi_volume_analysis"
            ).fetchone()
            kind = con.execute(
                "SELECT relkind FROM pg_class WHERE relname = 'nyc_yellow_taxi_volume_analysis'"
            ).fetchone()
        with psycopg.connect(store_url) as con:
            statement = con.execute(
                "SELECT status, with_event FROM statements WHERE statement_name = 'nyc-taxi-elt'"
            ).fetchone()
    assert trips == (5_000,)
    assert months == (12, 5_000)
    assert kind == ("m",)  # a materialized view, refreshed by the procedure
    assert statement is not None and statement[0] == "FINISHED"
    assert "statement nyc-taxi-elt" in text and "(one statement, one transaction)" in text, text
    [mail] = sorted((tmp_path / "demo" / "mail").glob("*.eml"))
    body = json.loads(mail.read_text().split("\n\n", 1)[1])
    assert body["state"] == "FINISHED" and body["principal"] == ELT_PRINCIPAL
