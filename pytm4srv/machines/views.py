"""``/api/machines/``: the machines holds can refer to, whether each is held when, and their
management by admins."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_smorest import abort
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pytm4srv import db
from pytm4srv.api import MACHINE_ID, NEXT_PAGE, Blueprint, next_page_link
from pytm4srv.auth import roles_required
from pytm4srv.db import reads, writes
from pytm4srv.holds.models import MachineHold, MachineHoldSchedule
from pytm4srv.machines.models import Machine, machine_named
from pytm4srv.machines.queries import held_until, machine_status
from pytm4srv.machines.schemas import (
    MachineListQuerySchema,
    MachineListSchema,
    MachineSchema,
    MachineStatusQuerySchema,
    MachineStatusSchema,
)
from pytm4srv.schemas import ErrorSchema
from pytm4srv.users.models import Role

blp = Blueprint("machines", __name__, url_prefix="/api/machines", description="Machines.")


NAME_TAKEN = "A machine of that name exists already."


def get_machine(machine_id: int, *, lock: bool = False) -> Machine:
    session = db.session()
    machine = session.get(Machine, machine_id, with_for_update=lock)
    return machine or abort(404, message="No such machine.")


def refuse_taken(session: Session, name: str, machine_id: int | None = None) -> None:
    """409 if another machine than ``machine_id`` has the name ``name``."""
    owner = machine_named(session, name)
    if owner is not None and owner != machine_id:
        abort(409, message=f"Machine {owner} has the name {name!r} already.")


def commit_names(session: Session) -> None:
    """Commit, answering 409 if a concurrent request took the name meanwhile."""
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        abort(409, message=NAME_TAKEN)


def uses(session: Session, machine_id: int) -> tuple[int, int]:
    """How many holds and how many schedules name the machine."""
    holds = (
        select(func.count()).select_from(MachineHold).where(MachineHold.machine_id == machine_id)
    )
    schedules = (
        select(func.count())
        .select_from(MachineHoldSchedule)
        .where(MachineHoldSchedule.machine_id == machine_id)
    )
    return session.scalar(holds) or 0, session.scalar(schedules) or 0


def counted(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


DUPLICATE = {"description": "Another machine has that name."}


@blp.route("/")
class Machines(MethodView):
    @reads
    @blp.arguments(MachineListQuerySchema(), location="query", as_kwargs=False)
    @blp.response(200, MachineListSchema(many=True), headers={"Link": NEXT_PAGE})
    def get(self, args: dict[str, Any]) -> Any:
        """List machines by id, a page at a time; with ``at``, whether each is held then."""
        page = args.get("limit", current_app.config["MAX_PAGE_SIZE"])
        offset = args.get("offset", 0)
        stmt = select(Machine.id, Machine.name).order_by(Machine.id).offset(offset)
        session = db.session()
        machines = [dict(row) for row in session.execute(stmt.limit(page + 1)).mappings()]
        if "at" in args:
            ids = [machine["id"] for machine in machines[:page]]
            held = held_until(session.connection(), args["at"], ids)
            for machine in machines:
                machine["held"] = machine["id"] in held
                machine["until"] = held.get(machine["id"])
        if len(machines) <= page or page == 0:
            return machines[:page]
        return machines[:page], 200, {"Link": next_page_link(offset + page, page)}

    @writes
    @roles_required(Role.ADMIN)
    @blp.arguments(MachineSchema())
    @blp.response(201, MachineSchema)
    @blp.alt_response(409, schema=ErrorSchema, **DUPLICATE)
    def put(self, data: dict[str, Any]) -> Any:
        """Create a machine (admins)."""
        session = db.session()
        refuse_taken(session, data["name"])
        machine = Machine(**data)
        session.add(machine)
        commit_names(session)
        return machine


@blp.route(f"/{MACHINE_ID}")
class MachineById(MethodView):
    @reads
    @blp.arguments(MachineStatusQuerySchema(), location="query", as_kwargs=False)
    @blp.response(200, MachineStatusSchema())
    def get(self, args: dict[str, Any], machine_id: int) -> Any:
        """Whether a machine is held at an instant (default now) or in a span, by which holds,
        and its next hold."""
        at = args.get("at") or args.get("from_") or datetime.now(UTC)
        status = machine_status(db.session().connection(), machine_id, at, args.get("until"))
        return status or abort(404, message="No such machine.")

    @writes
    @roles_required(Role.ADMIN)
    @blp.arguments(MachineSchema(partial=True))
    @blp.response(200, MachineSchema)
    @blp.alt_response(409, schema=ErrorSchema, **DUPLICATE)
    def patch(self, data: dict[str, Any], machine_id: int) -> Any:
        """Rename a machine (admins)."""
        machine = get_machine(machine_id)
        session = db.session()
        if "name" in data:
            refuse_taken(session, data["name"], machine_id)
            machine.name = data["name"]
        commit_names(session)
        return machine

    @writes
    @roles_required(Role.ADMIN)
    @blp.response(204)
    @blp.alt_response(409, schema=ErrorSchema, description="Holds or schedules name the machine.")
    def delete(self, machine_id: int) -> None:
        """Delete a machine that no hold or schedule names (admins)."""
        # Locked first, so that no hold or schedule naming it can be added before it goes.
        machine = get_machine(machine_id, lock=True)
        session = db.session()
        holds, schedules = uses(session, machine_id)
        if holds or schedules:
            abort(
                409,
                message=f"Machine {machine_id} is still used by {counted(holds, 'hold')} "
                f"and {counted(schedules, 'schedule')}.",
            )
        session.delete(machine)
        session.commit()
