"""The pages' changes go through the API's own views, in the same process.

A page that saves a hold or a schedule hands the API view exactly the JSON a program would send,
as the signed-in user, and shows its answer: the same validation and messages, roles, history,
re-planning of a schedule's holds and conflict handling, with no second copy of any of them.
The view runs in an application context of its own (its own ``g``). A view that reads shares the
page's database session (the page reads too: one connection, no second checkout); a view that
writes gets a session of its own, opened in the mode it declares, and the page's session is
closed first, so that on SQLite the page's read never holds up the view's write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import current_app, g, request

from pytm4srv import db
from pytm4srv.auth import Caller


@dataclass
class Answer:
    """The API's answer: its status, its JSON body, and (for 422) the messages by field."""

    status: int
    body: Any
    errors: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def message(self) -> str:
        if isinstance(self.body, dict):
            return str(self.body.get("message", ""))
        return ""


def call(method: str, path: str, body: Any = None, query: dict[str, Any] | None = None) -> Answer:
    """Run the API view of ``method path`` for the signed-in user; its answer."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    caller: Caller = g.user
    page_session = g.pop("db_session", None) if db.request_mode() == db.READ else None
    shared = None
    kwargs: dict[str, Any] = {"method": method, "base_url": request.host_url}
    if body is not None:
        kwargs["json"] = body
    if query:
        kwargs["query_string"] = query
    with app.app_context(), app.test_request_context(path, **kwargs):
        g.user = caller
        if page_session is not None and db.request_mode() == db.READ:
            shared = g.db_session = page_session
        elif page_session is not None:
            page_session.close()
        try:
            response = app.make_response(app.dispatch_request())
        except Exception as exc:  # the API's own error handlers make its answer
            response = app.make_response(app.handle_user_exception(exc))
        finally:
            if shared is not None:  # the page's, to keep open past this context
                g.pop("db_session", None)
        payload = response.get_json(silent=True) if response.data else None
    if shared is not None:
        g.db_session = shared
    answer = Answer(response.status_code, payload)
    if isinstance(payload, dict) and response.status_code >= 400:
        answer.errors = flatten(payload.get("errors") or {})
    return answer


def flatten(errors: dict[str, Any]) -> dict[str, list[str]]:
    """The envelope's ``errors`` (by location, then field) as messages by field name."""
    found: dict[str, list[str]] = {}
    for location in errors.values():
        if not isinstance(location, dict):
            continue
        for name, messages in location.items():
            if isinstance(messages, dict):  # a list field: messages by position
                messages = [m for inner in messages.values() for m in _texts(inner)]
            found.setdefault(str(name), []).extend(_texts(messages))
    return found


def _texts(messages: Any) -> list[str]:
    if isinstance(messages, str):
        return [messages]
    if isinstance(messages, list):
        return [text for item in messages for text in _texts(item)]
    if isinstance(messages, dict):
        return [text for item in messages.values() for text in _texts(item)]
    return [str(messages)]
