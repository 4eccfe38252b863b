"""Every command that writes names its database on stderr first, with any password masked, so
that one run without the service's environment says which database it wrote to."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pytm4srv.db import shown_url
from tests.conftest import REPO

WRITING = [
    ["users", "create", "carol", "--role", "staff"],
    ["machines", "create", "Drill 9"],
    ["holds", "materialize"],
    ["holds", "expire-keys"],
]


@pytest.mark.parametrize("args", WRITING, ids=lambda args: " ".join(args[:2]))
def test_a_writing_command_names_its_database_on_stderr_first(app, runner, args):
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    first = result.stderr.splitlines()[0]
    assert first == f"database: {shown_url(app.config['DATABASE_URL'])}"
    assert "database:" not in result.stdout  # the token or id stays the last line of stdout


def test_feed_new_url_names_its_database_too(app, runner, make_caller):
    user = make_caller("staff", name="dora").user
    result = runner.invoke(args=["feed", "new-url", user.name, "--base-url", "https://h.example"])
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(f"database: {shown_url(app.config['DATABASE_URL'])}\n")


def test_reading_commands_print_no_database_line(runner):
    for args in (["users", "list"], ["machines", "list"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 0 and result.stderr == "", (args, result.stderr)


def test_the_password_of_the_database_url_is_masked():
    url = "postgresql+psycopg://someone:hunter2@127.0.0.1:1/nothing?connect_timeout=2"
    env = {**os.environ, "PYTM4SRV_DATABASE_URL": url}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "flask",
            "--app",
            "pytm4srv",
            "users",
            "create",
            "x",
            "--role",
            "staff",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0  # nothing listens on port 1
    assert "hunter2" not in done.stdout + done.stderr
    assert done.stderr.splitlines()[0] == (
        "database: postgresql+psycopg://someone:***@127.0.0.1:1/nothing?connect_timeout=2"
    )
