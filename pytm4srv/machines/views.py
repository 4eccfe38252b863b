"""``/api/machines/``: the machines holds can refer to, and whether each is held when."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask.views import MethodView
from flask_smorest import abort
from marshmallow import fields
from sqlalchemy import select

from pytm4srv import db
from pytm4srv.api import Blueprint
from pytm4srv.db import reads
from pytm4srv.holds.queries import machine_status
from pytm4srv.holds.schemas import MachineStatusQuerySchema, MachineStatusSchema
from pytm4srv.machines.models import Machine
from pytm4srv.schemas import StrictSchema

blp = Blueprint("machines", __name__, url_prefix="/api/machines", description="Machines.")

MACHINE_ID = "<int(max=2147483647):machine_id>"


class MachineSchema(StrictSchema):
    id = fields.Integer(dump_only=True, metadata={"example": 1})
    name = fields.String(dump_only=True, metadata={"example": "CNC mill 3"})


@blp.route("/")
class Machines(MethodView):
    @reads
    @blp.response(200, MachineSchema(many=True))
    def get(self) -> Any:
        """List machines."""
        return db.session().scalars(select(Machine).order_by(Machine.id))


@blp.route(f"/{MACHINE_ID}")
class MachineById(MethodView):
    @reads
    @blp.arguments(MachineStatusQuerySchema(), location="query", as_kwargs=False)
    @blp.response(200, MachineStatusSchema())
    def get(self, args: dict[str, Any], machine_id: int) -> Any:
        """Whether a machine is held at an instant (default now), by which holds, and its next."""
        at = args.get("at") or datetime.now(UTC)
        status = machine_status(db.session().connection(), machine_id, at)
        return status or abort(404, message="No such machine.")
