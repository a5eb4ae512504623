from typer.testing import CliRunner

from skylan import __version__
from skylan.cli.main import app


def test_version() -> None:
    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0
    assert __version__ in res.stdout


def test_help_lists_groups() -> None:
    res = CliRunner().invoke(app, ["--help"])
    assert res.exit_code == 0
    assert "lab" in res.stdout
