"""``GET /api/health``: whether the service can answer, for load balancers and monitoring."""

from __future__ import annotations

import logging
from typing import Any

from flask.views import MethodView
from flask_smorest import abort
from marshmallow import fields
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from pytm4srv import db
from pytm4srv.api import Blueprint
from pytm4srv.db import reads
from pytm4srv.schemas import StrictSchema

log = logging.getLogger(__name__)

blp = Blueprint("health", __name__, url_prefix="/api", description="Service health.")

#: Never cached: a cached "ok" would hide an outage.
NO_STORE = {"Cache-Control": "no-store"}


class HealthSchema(StrictSchema):
    status = fields.String(dump_only=True, metadata={"enum": ["ok"]})


@blp.route("/health")
class Health(MethodView):
    @reads
    @blp.response(200, HealthSchema, headers={"Cache-Control": {"schema": {"type": "string"}}})
    @blp.doc(security=[], description="Needs no token. 503 while the database does not answer.")
    def get(self) -> Any:
        """Tell whether the service and its database answer (no token needed)."""
        try:
            db.session().connection().execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            log.warning("health: the database does not answer: %s", type(exc).__name__)
            abort(503, message="The database does not answer.", headers=NO_STORE)
        return {"status": "ok"}, 200, NO_STORE
