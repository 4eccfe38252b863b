"""``/api/me`` (who am I, my feed URL) and the secret calendar feed itself."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import current_app, request, url_for
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import fields, validate
from sqlalchemy import select
from werkzeug.http import is_resource_modified

from pytm4srv import db
from pytm4srv.api import Blueprint
from pytm4srv.auth import current_user
from pytm4srv.db import reads, writes
from pytm4srv.feed import calendar, queries
from pytm4srv.feed.models import FeedSecret
from pytm4srv.feed.secrets import new_feed_secret
from pytm4srv.fields import INT32_MAX, QueryInteger
from pytm4srv.holds.schemas import MAX_FILTER_VALUES
from pytm4srv.schemas import StrictSchema
from pytm4srv.users.models import User
from pytm4srv.users.tokens import hash_token

me_blp = Blueprint("me", __name__, url_prefix="/api/me", description="The caller.")
feed_blp = Blueprint(
    "feed", __name__, url_prefix="/api/feed", description="Secret calendar feeds (iCalendar)."
)


class MeSchema(StrictSchema):
    id = fields.Integer(dump_only=True)
    name = fields.String(dump_only=True)
    role = fields.String(dump_only=True)


class FeedUrlSchema(StrictSchema):
    url = fields.String(
        dump_only=True, metadata={"description": "The feed's address; keep it secret."}
    )


class FeedQuerySchema(StrictSchema):
    machine = fields.List(
        QueryInteger(validate=validate.Range(min=1, max=INT32_MAX)),
        validate=validate.Length(max=MAX_FILTER_VALUES),
        metadata={"description": "Only holds and schedules of these machines (repeatable)."},
    )


def now() -> datetime:
    return datetime.now(UTC)


def feed_url(secret: str) -> str:
    """The feed's absolute URL: under ``PYTM4SRV_PUBLIC_URL`` when set, else the request's."""
    public = current_app.config.get("PUBLIC_URL")
    path: str = url_for("feed.Calendar", secret=secret)
    base = public or request.host_url
    return base.rstrip("/") + path


@me_blp.route("/")
class Me(MethodView):
    @reads
    @me_blp.response(200, MeSchema)
    def get(self) -> Any:
        """Who the caller is: id, name and role."""
        return db.session().get(User, current_user().id) or abort(401)


@me_blp.route("/feed")
class MyFeed(MethodView):
    @writes
    @me_blp.response(201, FeedUrlSchema)
    def post(self) -> Any:
        """Make a new secret calendar feed URL for the caller; the previous one stops working."""
        session = db.session()
        secret = new_feed_secret(session, current_user().id)
        session.commit()
        return {"url": feed_url(secret)}


CALENDAR_NAME = "Machine holds (pytm4srv)"
CALENDAR_UID = f"holds-feed@{queries.UID_DOMAIN}"
CALENDAR = {
    "description": "An RFC 5545 calendar (text/calendar).",
    "content": {"text/calendar": {"schema": {"type": "string"}}},
}


@feed_blp.route("/<secret>.ics")
class Calendar(MethodView):
    @reads
    @feed_blp.arguments(FeedQuerySchema(), location="query", as_kwargs=False)
    @feed_blp.doc(security=[], responses={"200": CALENDAR, "304": {"description": "Not modified."}})
    @feed_blp.alt_response(404, description="No feed with this secret.")
    def get(self, args: dict[str, Any], secret: str) -> Any:
        """A user's calendar of holds and coming fires; no token (the URL is the secret)."""
        session = db.session()
        digest = hash_token(secret)
        found = session.scalar(select(FeedSecret.id).where(FeedSecret.secret_hash == digest))
        if found is None:
            abort(404, message="No such feed.")
        machines = sorted(set(args.get("machine", [])))
        window = queries.window_at(now())
        zone = current_app.config["ZONE"]
        etag, last_modified = queries.validators(session, machines, window, zone)
        modified = is_resource_modified(
            request.environ, etag=etag, last_modified=last_modified.replace(microsecond=0)
        )
        response = current_app.response_class(status=200 if modified else 304)
        response.set_etag(etag)
        response.last_modified = last_modified
        response.headers["Cache-Control"] = "private, no-cache"
        if modified:
            events = queries.feed_events(session, machines, window, zone)
            body = calendar.render(events, CALENDAR_NAME, CALENDAR_UID, window.end)
            response.set_data(body)
            response.content_type = "text/calendar; charset=utf-8"
        return response
