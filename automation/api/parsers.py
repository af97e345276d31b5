"""The API's JSON parser: like DRF's, and refusing what no database can store.

DRF's own parser refuses NaN and Infinity without saying where they are, and takes ``1e999``
(infinity) and lone surrogates (``"\\ud800"``), which SQLite stores and then cannot read back.
Run inputs, approval comments, definitions and every other JSON body of the API go through this
parser (the default parser in REST_FRAMEWORK), so such a body is a 400 naming the value's path
before anything is stored (automation.lib.jsonsafe).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser

from automation.lib import jsonsafe

#: The deepest nesting of objects/arrays an API body may have. Far more than any definition,
#: input or signal needs; much deeper, storing it (json.dumps) or checking it (JSON Schema)
#: recurses past Python's limit and a body became a 500.
MAX_DEPTH = 100


class BodyTooLarge(APIException):
    status_code = 413
    default_code = "body_too_large"


class StorableJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            # Django bounds form bodies by this setting, not bodies read as a stream.
            raise BodyTooLarge(f"The body is larger than this URL's limit of {limit} bytes.")
        try:
            value = jsonsafe.loads(raw.decode(encoding))
        except jsonsafe.UnstorableJSON as exc:
            raise ParseError(f"The body cannot be stored: {exc}") from None
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        # Each level opens a bracket: a body with no more brackets than the limit needs no walk.
        if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and jsonsafe.deeper_than(value, MAX_DEPTH):
            raise ParseError(
                f"The body nests objects/arrays more than {MAX_DEPTH} levels deep; flatten it."
            )
        return value
