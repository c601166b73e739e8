"""Bad runbooks and inventories stop ``stormwatch remediation check``/``run``, the worker and
``replay`` at start-up with one line naming the file and field (exit code 2), before any
broker or Redis is needed; the shipped ones check out."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app

ROOT = Path(__file__).resolve().parents[2]
ENV = {"COLUMNS": "400", "STORMWATCH_REDIS__URL": "redis://127.0.0.1:9/0"}


def run(*args: str, **env: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={**ENV, **env})
    return result.exit_code, result.stdout, result.stderr


def test_shipped_runbooks_and_inventory_check_out() -> None:
    code, _, err = run(
        "remediation",
        "check",
        "--runbooks",
        str(ROOT / "runbooks"),
        "--inventory",
        str(ROOT / "inventories" / "online-boutique.yaml"),
    )
    assert code == 0, err
    assert "restart-crashed-process: mode auto" in err and err.rstrip().endswith("valid")


@pytest.mark.parametrize("command", ["check", "run", "worker"])
def test_a_bad_runbook_stops_start_up_with_one_line(tmp_path: Path, command: str) -> None:
    books = tmp_path / "runbooks"
    books.mkdir()
    (books / "x.yaml").write_text(
        "id: x\ntitle: x\nsteps: [{id: s, action: kubernetes.scale, params: {replicas: 0}}]\n"
    )
    args = ("worker",) if command == "worker" else ("remediation", command)
    code, _, err = run(*args, STORMWATCH_REMEDIATION__RUNBOOKS=str(books))
    assert code == 2, err
    assert "x.yaml: steps[0].params: replicas must be at least 1, got 0" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_an_inventory_with_a_credential_in_it_is_refused(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        "services:\n  cartservice:\n    supervisor:\n"
        "      url: http://127.0.0.1:9001/RPC2\n      programs: [cartservice]\n"
        "      username_env: SUP_USER\n      password: hunter2\n"
    )
    code, _, err = run("remediation", "check", "--inventory", str(inventory))
    assert code == 2 and "unknown field `password`" in err and "hunter2" not in err
    assert len(err.strip().splitlines()) == 1
