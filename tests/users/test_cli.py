"""``flask users ...``: what an admin does first."""

from __future__ import annotations

from sqlalchemy import select

from pytm4srv.models import MachineHold, User
from pytm4srv.users.tokens import hash_token


def last_line(output: str) -> str:
    return output.strip().splitlines()[-1]


def test_users_create_prints_a_working_token_last(runner, client, session):
    result = runner.invoke(args=["users", "create", "ada", "--role", "planner"])
    assert result.exit_code == 0, result.output
    token = last_line(result.output)
    user = session.scalars(select(User).where(User.name == "ada")).one()
    assert user.role == "planner"
    assert user.token_hash == hash_token(token)
    r = client.get("/api/machines/", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200


def test_users_create_rejects_unknown_role_and_duplicate_name(runner, session):
    bad_role = runner.invoke(args=["users", "create", "ada", "--role", "boss"])
    assert bad_role.exit_code != 0
    assert runner.invoke(args=["users", "create", "ada", "--role", "staff"]).exit_code == 0
    duplicate = runner.invoke(args=["users", "create", "ada", "--role", "admin"])
    assert duplicate.exit_code != 0
    assert "exists" in duplicate.output
    assert len(session.scalars(select(User)).all()) == 1


def test_users_list_shows_names_and_roles(runner, make_caller):
    make_caller("admin", name="root-user")
    result = runner.invoke(args=["users", "list"])
    assert "root-user\tadmin" in result.output


def test_rotate_token_replaces_the_old_one(runner, client):
    old = last_line(runner.invoke(args=["users", "create", "ada", "--role", "staff"]).output)
    result = runner.invoke(args=["users", "rotate-token", "ada"])
    new = last_line(result.output)
    assert new != old
    get = lambda token: client.get("/api/machines/", headers={"Authorization": f"Bearer {token}"})  # noqa: E731
    assert get(old).status_code == 401
    assert get(new).status_code == 200


def test_set_role_changes_what_the_user_may_do(runner, session):
    runner.invoke(args=["users", "create", "ada", "--role", "staff"])
    assert runner.invoke(args=["users", "set-role", "ada", "admin"]).exit_code == 0
    assert session.scalars(select(User.role).where(User.name == "ada")).one() == "admin"


def test_delete_user_keeps_holds_and_revokes_token(runner, client, session, machine):
    token = last_line(runner.invoke(args=["users", "create", "ada", "--role", "staff"]).output)
    headers = {"Authorization": f"Bearer {token}"}
    created = client.put(
        "/api/machines/holds/", json={"machine_id": machine.id, "reason": "r"}, headers=headers
    )
    assert created.status_code == 201
    result = runner.invoke(args=["users", "delete", "ada"])
    assert result.exit_code == 0
    assert client.get("/api/machines/", headers=headers).status_code == 401
    session.expire_all()
    assert session.get(MachineHold, created.json["id"]).user_id is None


def test_unknown_user_is_a_clean_error(runner):
    result = runner.invoke(args=["users", "delete", "nobody"])
    assert result.exit_code != 0
    assert "no user named 'nobody'" in result.output
