"""The pages (docs/WEB.md): sign-in, the board, down now, holds, schedules, subscribe, machines.

Reads use the API's queries; changes go through the API's views (:mod:`.api_calls`), whose
messages the forms show next to their fields.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_wtf.csrf import CSRFError
from sqlalchemy import select
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from pytm4srv import db, recurrence
from pytm4srv.db import reads
from pytm4srv.holds.models import MachineHoldSchedule
from pytm4srv.holds.schedules import (
    PATTERN_FIELDS,
    pattern_of,
    preview_request,
    with_rule,
    zone_name,
)
from pytm4srv.holds.schemas import PreviewSchema
from pytm4srv.machines.models import Machine
from pytm4srv.machines.queries import held_at
from pytm4srv.summary import describe
from pytm4srv.users.models import PLANNING_ROLES, Role, User
from pytm4srv.web import csrf, forms, sessions
from pytm4srv.web.api_calls import Answer, call
from pytm4srv.web.board import week_board
from pytm4srv.web.forms import FREQUENCIES, MONTHS, WEEKDAYS
from pytm4srv.web.times import (
    ZONE_COOKIE,
    monday_of,
    page_zone,
    page_zone_name,
    wall,
    wall_from_iso,
    zone_known_to_browser,
    zone_options,
)

bp = Blueprint("web", __name__, template_folder="templates")

#: The pages' Content-Security-Policy: every script, style, font and image from the service.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)

#: What a summary is written from, read by the API's own schema (the preview has checked all).
SUMMARY_FIELDS = (*PATTERN_FIELDS, "duration", "rrule")
SUMMARY_SCHEMA = PreviewSchema(partial=True, only=SUMMARY_FIELDS)

HOLDS = "/api/machines/holds/"
SCHEDULES = "/api/machines/holds/schedules/"


@bp.before_request
def guard() -> None:
    """Refuse forms from other sites and forms without the page's token; find the user."""
    sessions.refuse_foreign()
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()
    sessions.load_user()


@bp.after_request
def page_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.errorhandler(CSRFError)
def refused_form(error: CSRFError) -> Any:
    return render_template("web/error.html", code=403, message=error.description), 403


@bp.errorhandler(HTTPException)
def page_error(error: HTTPException) -> Any:
    code = error.code or 500
    return render_template("web/error.html", code=code, message=error.description), code


@bp.app_template_global()
def is_planner() -> bool:
    return "user" in g and g.user.role in PLANNING_ROLES


@bp.app_template_global()
def is_admin() -> bool:
    return "user" in g and g.user.role == Role.ADMIN


@bp.app_context_processor
def page_context() -> dict[str, Any]:
    if request.blueprint != "web":
        return {}
    return {
        "zone_name": page_zone_name(),
        "zone_options": zone_options,
        # A page answering a form is never shown again to tell the zone (that would post again).
        "zone_told": zone_known_to_browser() or request.method != "GET",
        "wall": wall,
    }


def machines() -> list[Any]:
    """Every machine, by name, for the "Machine" choices."""
    return list(db.session().execute(select(Machine.id, Machine.name).order_by(Machine.name)))


def machine_names() -> dict[int, str]:
    """Every machine's name, by id."""
    rows = db.session().execute(select(Machine.id, Machine.name))
    return {machine_id: name for machine_id, name in rows}


# -- signing in and out; the zone ------------------------------------------------------------


@bp.route("/signin", methods=["GET", "POST"])
@reads
def sign_in() -> Any:
    """The sign-in form; a user's token starts a session."""
    error = None
    if request.method == "POST":
        if sessions.sign_in(request.form.get("token", "")):
            return redirect(sessions.safe_next(request.args.get("next")))
        error = "Unknown or revoked token."
    status = 401 if error else 200
    return render_template("web/signin.html", error=error), status


@bp.route("/signout", methods=["POST"])
@reads
def sign_out() -> Any:
    """End the session."""
    sessions.sign_out()
    flash("Signed out.")
    return redirect(url_for("web.sign_in"))


@bp.route("/zone", methods=["POST"])
@reads
def set_zone() -> Any:
    """Show times in another zone, in this browser."""
    name = request.form.get("zone", "")
    response = redirect(sessions.safe_next(request.form.get("next")))
    if recurrence.is_zone_name(name):
        response.set_cookie(
            ZONE_COOKIE, name, max_age=400 * 24 * 3600, samesite="Lax", secure=request.is_secure
        )
    else:
        flash(f"Unknown time zone {name!r}.", "error")
    return response


# -- the board and down now -------------------------------------------------------------------


@bp.route("/")
@reads
@sessions.signed_in
def board() -> Any:
    """Machines by the days of a week: their holds and planned fires."""
    zone = page_zone()
    today = datetime.now(zone).date()
    try:
        monday = monday_of(date.fromisoformat(request.args.get("week", "")))
    except ValueError:
        monday = monday_of(today)
    name_filter = request.args.get("q", "")
    table = week_board(db.session(), monday, zone, name_filter)
    week = timedelta(days=7)
    return render_template(
        "web/board.html",
        board=table,
        today=today,
        name_filter=name_filter,
        previous=monday - week,
        next=monday + week,
    )


def down_now() -> list[dict[str, Any]]:
    """The machines held now, by name: their holds and until when."""
    held = held_at(db.session().connection(), datetime.now(UTC))
    names = machine_names()
    rows = [
        {"id": machine_id, "name": names.get(machine_id, str(machine_id)), "held": entry}
        for machine_id, entry in held.items()
    ]
    return sorted(rows, key=lambda row: (row["name"], row["id"]))


@bp.route("/down")
@reads
@sessions.signed_in
def down() -> Any:
    """The machines held now; the list brings itself up to date."""
    return render_template("web/down.html", rows=down_now(), checked=datetime.now(UTC))


@bp.route("/down/list")
@reads
@sessions.signed_in
def down_list() -> Any:
    """The down-now list alone, for the page to swap in."""
    return render_template("web/down_list.html", rows=down_now(), checked=datetime.now(UTC))


# -- holds -------------------------------------------------------------------------------------


@bp.route("/holds/new", methods=["GET", "POST"])
@reads
@sessions.signed_in
def new_hold() -> Any:
    """The form of a new hold; "Save" creates it."""
    values: dict[str, Any] = {"machine_id": request.args.get("machine", "")}
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        body, errors = forms.hold_body(request.form, page_zone())
        values = request.form.to_dict()
        if not errors:
            answer = call("PUT", HOLDS, body)
            if answer.ok:
                flash(f"Hold {answer.body['id']} saved.")
                return redirect(url_for("web.hold", hold_id=answer.body["id"]))
            errors = _problems(answer)
    return _hold_form(values, errors, None)


def _hold_form(values: dict[str, Any], errors: dict[str, list[str]], hold_id: int | None) -> Any:
    status = 422 if errors else 200
    page = render_template(
        "web/hold_form.html", values=values, errors=errors, hold_id=hold_id, machines=machines()
    )
    return page, status


def _problems(answer: Answer) -> dict[str, list[str]]:
    """The API's complaint: its messages by field, else its message for the whole form."""
    if answer.status in (401, 403):
        abort(answer.status, answer.message)
    if answer.status == 404:
        abort(404, answer.message)
    return answer.errors or {"form": [answer.message]}


def _get(path: str) -> Any:
    answer = call("GET", path)
    if not answer.ok:
        abort(answer.status, answer.message)
    return answer.body


@bp.route("/holds/<int:hold_id>")
@reads
@sessions.signed_in
def hold(hold_id: int) -> Any:
    """A hold: its fields, its schedule, its history."""
    shown = _get(f"{HOLDS}{hold_id}")
    history = _get(f"{HOLDS}{hold_id}/history")
    return _hold_page(shown, history)


def _hold_page(shown: dict[str, Any], history: list[dict[str, Any]]) -> Any:
    names = machine_names()
    users = _user_names([entry["user_id"] for entry in history] + [shown["user_id"]])
    schedule_name = None
    if shown["schedule_id"] is not None:
        by_id = select(MachineHoldSchedule.name).where(
            MachineHoldSchedule.id == shown["schedule_id"]
        )
        schedule_name = db.session().scalar(by_id)
    return render_template(
        "web/hold.html",
        hold=shown,
        schedule_name=schedule_name,
        history=history,
        machine=names.get(shown["machine_id"], shown["machine_id"]),
        users=users,
        instant=_instant,
    )


def _user_names(ids: list[int | None]) -> dict[int, str]:
    wanted = {user_id for user_id in ids if user_id is not None}
    if not wanted:
        return {}
    rows = db.session().execute(select(User.id, User.name).where(User.id.in_(wanted)))
    return {user_id: name for user_id, name in rows}


def _instant(value: Any) -> str:
    """A UNIX timestamp of an answer as a wall time of the page; "" for None."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return "" if value is None else str(value)
    return wall(datetime.fromtimestamp(value, UTC))


@bp.route("/holds/<int:hold_id>/edit", methods=["GET", "POST"])
@reads
@sessions.signed_in
def edit_hold(hold_id: int) -> Any:
    """A hold's form; "Save" changes what was changed."""
    zone = page_zone()
    before = forms.hold_fields(_get(f"{HOLDS}{hold_id}"), zone)
    if request.method == "GET":
        return _hold_form(before, {}, hold_id)
    body, errors = forms.hold_body(request.form, zone)
    if not errors:
        answer = call("PATCH", f"{HOLDS}{hold_id}", forms.changed(body, before, request.form))
        if answer.ok:
            flash(f"Hold {hold_id} saved.")
            return redirect(url_for("web.hold", hold_id=hold_id))
        errors = _problems(answer)
    return _hold_form(request.form.to_dict(), errors, hold_id)


@bp.route("/holds/<int:hold_id>/delete", methods=["GET", "POST"])
@reads
@sessions.signed_in
def delete_hold(hold_id: int) -> Any:
    """Ask, then delete a hold (planners and admins)."""
    if request.method == "GET":
        shown = _get(f"{HOLDS}{hold_id}")
        return render_template("web/confirm.html", kind="hold", name=shown["reason"])
    answer = call("DELETE", f"{HOLDS}{hold_id}")
    if not answer.ok:
        abort(answer.status, answer.message)
    flash(f"Hold {hold_id} deleted.")
    return redirect(url_for("web.board"))


# -- schedules ---------------------------------------------------------------------------------


@bp.route("/schedules")
@reads
@sessions.signed_in
def schedules() -> Any:
    """Every schedule with its machine, its summary and its next fire."""
    listed = _get(SCHEDULES).values()
    names = machine_names()
    return render_template("web/schedules.html", schedules=listed, names=names, instant=_instant)


@bp.route("/schedules/<int:schedule_id>")
@reads
@sessions.signed_in
def schedule(schedule_id: int) -> Any:
    """A schedule: its rule in words, its next fires, and its history."""
    shown = _get(f"{SCHEDULES}{schedule_id}")
    names = machine_names()
    fires = _preview({"id": schedule_id})
    return render_template(
        "web/schedule.html",
        schedule=shown,
        machine=names.get(shown["machine_id"], shown["machine_id"]),
        preview=fires,
        schedule_id=schedule_id,
        instant=_instant,
    )


@bp.route("/schedules/new", methods=["GET", "POST"])
@reads
@sessions.signed_in
def new_schedule() -> Any:
    """The form of a new schedule, with its live preview; "Save" creates it."""
    if request.method == "GET":
        return _schedule_form(forms.schedule_fields(None, page_zone()), {}, None)
    body, errors = forms.schedule_body(request.form, page_zone())
    if not errors:
        answer = call("PUT", SCHEDULES, body)
        if answer.ok:
            flash(f"Schedule “{answer.body['name']}” saved.")
            return redirect(url_for("web.schedule", schedule_id=answer.body["id"]))
        errors = _problems(answer)
    return _schedule_form(forms.form_values(request.form), errors, None)


@bp.route("/schedules/<int:schedule_id>/edit", methods=["GET", "POST"])
@reads
@sessions.signed_in
def edit_schedule(schedule_id: int) -> Any:
    """A schedule's form, with its live preview; "Save" stores it."""
    if request.method == "GET":
        shown = _get(f"{SCHEDULES}{schedule_id}")
        return _schedule_form(forms.schedule_fields(shown, page_zone()), {}, schedule_id)
    body, errors = forms.schedule_body(request.form, page_zone())
    if not errors:
        answer = call("PATCH", f"{SCHEDULES}{schedule_id}", body)
        if answer.ok:
            flash(f"Schedule “{answer.body['name']}” saved.")
            return redirect(url_for("web.schedule", schedule_id=schedule_id))
        errors = _problems(answer)
    return _schedule_form(forms.form_values(request.form), errors, schedule_id)


def _schedule_form(values: dict[str, Any], errors: dict[str, Any], schedule_id: int | None) -> Any:
    status = 422 if errors else 200
    page = render_template(
        "web/schedule_form.html",
        values=values,
        errors=errors,
        schedule_id=schedule_id,
        machines=machines(),
        frequencies=FREQUENCIES,
        weekdays=WEEKDAYS,
        months=MONTHS,
        service_zone=current_app.config["TIMEZONE"],
    )
    return page, status


@bp.route("/schedules/preview", methods=["POST"])
@reads
@sessions.signed_in
def schedule_preview() -> Any:
    """The summary and the next 10 fires of the schedule form as it stands (a fragment)."""
    body, errors = forms.schedule_body(request.form, page_zone())
    schedule_id = request.form.get("schedule_id", "")
    if schedule_id.isdigit():
        body["id"] = int(schedule_id)
    preview = {"errors": errors} if errors else _preview(body)
    return render_template("web/preview.html", preview=preview, schedule_id=body.get("id"))


def _preview(body: dict[str, Any]) -> dict[str, Any]:
    """The API's detailed preview of ``body`` (10 fires) and the summary it would answer."""
    answer = call("POST", f"{SCHEDULES}previewSchedule", body, {"count": 10, "detail": 1})
    if not answer.ok:
        if answer.status == 422:
            return {"errors": answer.errors or {"form": [answer.message]}}
        abort(answer.status, answer.message)
    service = current_app.config["ZONE"]
    if set(body) == {"id"}:  # a stored schedule as it is: its own summary
        stored = _get(f"{SCHEDULES}{body['id']}")
        summary, zone = stored["summary"], stored["timezone"] or zone_name(service)
    else:  # the form's fields: the sentence the API would answer once saved
        summary, zone = _summary(body, service)
    fires = [
        {
            "start": fire["start"],
            "local": wall_from_iso(fire["local"]),
            "shifted": fire["shifted"],
            "conflicts": fire["conflicts"],
        }
        for fire in answer.body
    ]
    return {"summary": summary, "zone": zone, "fires": fires}


def _summary(body: dict[str, Any], service: tzinfo) -> tuple[str, str]:
    """The summary sentence of a previewed body (which the preview has checked) and the zone it
    is read in, as the API would answer them once saved: read by the API's schema, a pasted
    ``rrule`` turned into its fields and merged over the stored schedule as the preview does."""
    sent = SUMMARY_SCHEMA.load({name: body[name] for name in SUMMARY_FIELDS if name in body})
    stored = db.session().get(MachineHoldSchedule, body["id"]) if "id" in body else None
    now = datetime.now(UTC)
    merged = preview_request(
        stored, with_rule(sent, stored, service, now), None, now, with_ends=False
    )
    pattern = pattern_of(merged.fields)
    zone = pattern.timezone or zone_name(service)
    shown_in = recurrence.zone_of(pattern, service) if pattern.timezone is None else None
    return describe(pattern, zone, sent.get("duration"), shown_in), zone


@bp.route("/schedules/<int:schedule_id>/skip", methods=["POST"])
@reads
@sessions.signed_in
def skip_fire(schedule_id: int) -> Any:
    """Add a previewed fire to the schedule's skipped ones."""
    shown = _get(f"{SCHEDULES}{schedule_id}")
    fire = forms.number(request.form.get("fire", ""))
    answer = call("PATCH", f"{SCHEDULES}{schedule_id}", {"skip": [*shown["skip"], fire]})
    if answer.ok:
        flash(f"Skipped the fire of {_instant(fire)}.")
    else:
        flash(answer.message + " " + " ".join(sum(answer.errors.values(), [])), "error")
    return redirect(sessions.safe_next(request.form.get("next")))


@bp.route("/schedules/<int:schedule_id>/delete", methods=["GET", "POST"])
@reads
@sessions.signed_in
def delete_schedule(schedule_id: int) -> Any:
    """Ask, then delete a schedule (planners and admins)."""
    if request.method == "GET":
        shown = _get(f"{SCHEDULES}{schedule_id}")
        return render_template("web/confirm.html", kind="schedule", name=shown["name"])
    answer = call("DELETE", f"{SCHEDULES}{schedule_id}")
    if not answer.ok:
        abort(answer.status, answer.message)
    flash(f"Schedule {schedule_id} deleted.")
    return redirect(url_for("web.schedules"))


# -- subscribe; machines -----------------------------------------------------------------------


@bp.route("/subscribe", methods=["GET", "POST"])
@reads
@sessions.signed_in
def subscribe() -> Any:
    """The user's calendar feed: a new secret URL (the old one stops working)."""
    url = None
    if request.method == "POST":
        answer = call("POST", "/api/me/feed")
        if not answer.ok:
            abort(answer.status, answer.message)
        url = answer.body["url"]
    return render_template("web/subscribe.html", url=url)


@bp.route("/machines", methods=["GET", "POST"])
@reads
@sessions.signed_in
def machines_page() -> Any:
    """The machines (admins): add, rename, delete."""
    if not is_admin():
        abort(403, "Only admins manage machines.")
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        answer = call("PUT", "/api/machines/", {"name": request.form.get("name", "")})
        if answer.ok:
            flash(f"Machine “{answer.body['name']}” added.")
            return redirect(url_for("web.machines_page"))
        errors = _problems(answer)
    status = 422 if errors else 200
    return render_template("web/machines.html", machines=machines(), errors=errors), status


@bp.route("/machines/<int:machine_id>/rename", methods=["POST"])
@reads
@sessions.signed_in
def rename_machine(machine_id: int) -> Any:
    """Rename a machine (admins)."""
    answer = call("PATCH", f"/api/machines/{machine_id}", {"name": request.form.get("name", "")})
    if answer.ok:
        flash(f"Machine {machine_id} renamed “{answer.body['name']}”.")
    else:
        _refused(answer)
    return redirect(url_for("web.machines_page"))


@bp.route("/machines/<int:machine_id>/delete", methods=["POST"])
@reads
@sessions.signed_in
def delete_machine(machine_id: int) -> Any:
    """Delete a machine (admins); one still named by holds or schedules stays."""
    answer = call("DELETE", f"/api/machines/{machine_id}")
    if answer.ok:
        flash(f"Machine {machine_id} deleted.")
    elif answer.status == 409:
        flash(
            f"{answer.message} A machine can only go once no hold or schedule names it: "
            "delete those first, or move them to another machine.",
            "error",
        )
    else:
        _refused(answer)
    return redirect(url_for("web.machines_page"))


def _refused(answer: Answer) -> None:
    if answer.status in (401, 403, 404):
        abort(answer.status, answer.message)
    flash(" ".join([answer.message, *sum(answer.errors.values(), [])]), "error")
