"""The web view inside the operator (``tunix-rt operator --ui-port``): the same app as
``tunix-rt ui`` on the operator's loop, the Sweeps the API holds joined over the store
(a new one Pending before it has files), refusals of options that cannot work, and the
operator still free of the ML stacks with the view's modules imported."""

from __future__ import annotations

import asyncio
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from support import operator as op
from support.imports import loaded_by
from support.net import free_port
from support.ui_store import build_store
from tunix_rt.cli.operator import UiOptions, app, build_config
from tunix_rt.controller import ConfigError, OperatorConfig
from tunix_rt.storage import Store


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def row_of(html: str, run: str) -> str | None:
    found = re.search(rf'<tr data-kind="Sweep" data-run="{run}">(.*?)</tr>', html, re.S)
    return found.group(1) if found else None


async def test_the_operator_serves_the_view_with_the_live_phases(
    api: op.Api,
    config: OperatorConfig,
    store: Store,
    tmp_path: Path,
    start_operator: op.StartOperator,
) -> None:
    build_store(tmp_path / "store")  # finished and running runs, in the operator's store
    port = free_port()
    await start_operator(config.replace(ui_port=port, ui_host="127.0.0.1"))
    base = f"http://127.0.0.1:{port}"
    assert await asyncio.to_thread(get, f"{base}/healthz") == (200, "ok\n")
    await api.create(op.SWEEPS, op.sweep_body("fresh"))
    await op.wait_for(lambda: api.get(op.RAYJOBS, "ml", "sweep-fresh"), what="the RayJob")

    async def listed() -> str | None:
        status, html = await asyncio.to_thread(get, f"{base}/")
        row = row_of(html, "ml/fresh") if status == 200 else None
        return row if row and "phase-Pending" in row and ">live<" in row else None

    row = await op.wait_for(listed, what="the new Sweep Pending (live) on the list")
    assert "(no files yet)" in row
    _, html = await asyncio.to_thread(get, f"{base}/")
    store_row = row_of(html, "team-a/mixed")  # only in the store: the store's phase
    assert store_row is not None and "phase-Succeeded" in store_row and ">live<" not in store_row
    assert 'id="promote"' not in (await asyncio.to_thread(get, f"{base}/sweeps/team-a/mixed"))[1]


def ui_config(**ui: object) -> OperatorConfig:
    base = OperatorConfig(default_storage=None)
    return build_config(
        namespaces=None, all_namespaces=False, peering=None, standalone=False, liveness=None,
        metrics_port=None, ui=UiOptions(**ui), base=base,  # type: ignore[arg-type]
    )  # fmt: skip


def test_the_view_is_off_by_default_and_takes_the_default_storage() -> None:
    assert ui_config().ui_port is None
    with_store = OperatorConfig(default_storage="s3://bucket/runs")
    config = build_config(
        namespaces=None, all_namespaces=False, peering=None, standalone=False, liveness=None,
        metrics_port=None, ui=UiOptions(port=8765), base=with_store,
    )  # fmt: skip
    assert (config.ui_port, config.ui_store_uri, config.ui_host) == (
        8765,
        "s3://bucket/runs",
        "0.0.0.0",
    )


@pytest.mark.parametrize(
    ("ui", "message"),
    [
        ({"port": 8765}, "--ui-port needs a store to show: give --ui-store URI or set "),
        ({"port": 70000, "store": "s3://b/r"}, "--ui-port 70000 is not a port"),
        ({"port": 8765, "store": "http://b/r"}, "--ui-store 'http://b/r' must be a file://"),
        ({"promote_repo": "/tmp"}, "--ui-promote-repo needs the web view: give --ui-port"),
        (
            {"port": 8765, "store": "s3://b/r", "promote_repo": "https://u:pw123456@h.io/x.git"},
            "--ui-promote-repo: the repository URL must not carry credentials",
        ),
    ],
)
def test_options_that_cannot_work_are_refused_by_name(ui: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        ui_config(**ui)
    assert message in str(refused.value) and "pw123456" not in str(refused.value)


def test_the_cli_names_the_ui_options_and_refuses_a_view_without_a_store() -> None:
    shown = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    for option in ("--ui-port", "--ui-host", "--ui-store", "--ui-promote-repo"):
        assert option in shown.output
    refused = CliRunner().invoke(app, ["--ui-port", "8765"], env={"TUNIX_RT_DEFAULT_STORAGE": None})
    assert refused.exit_code == 2 and "--ui-port needs a store" in refused.output


def test_the_view_brings_no_ml_stack_into_the_operator() -> None:
    view = ["tunix_rt.controller.web", "tunix_rt.ui", "tunix_rt.ui.live", "tunix_rt.ui.promote"]
    assert loaded_by(["tunix_rt.controller", *view]) == []
