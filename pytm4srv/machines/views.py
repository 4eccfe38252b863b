"""``GET /api/machines/``: the machines holds can refer to."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from marshmallow import fields
from sqlalchemy import select

from pytm4srv import db
from pytm4srv.api import Blueprint
from pytm4srv.db import reads
from pytm4srv.machines.models import Machine
from pytm4srv.schemas import StrictSchema

blp = Blueprint("machines", __name__, url_prefix="/api/machines", description="Machines.")


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
