"""The one error type a user can act on: raised by code with parameters, its words from the catalogue."""

from __future__ import annotations

from typing import Any

from .messages import entry, error_message, lang_of


class UserError(Exception):
    """Bad input or a refused request: shown to the user as is, never a stack trace.

    ``UserError("too_many_hotwords", count=120, limit=100)``: `code` names an entry of messages.ERRORS (an unknown
    one raises ValueError here), which gives the English and Chinese text and the HTTP status the API answers
    with; `status` overrides it, `headers` go out with the API's answer (Retry-After, WWW-Authenticate).

    ``key`` is the catalogue entry, ``code`` what clients see (several entries share one, e.g. "bad_form"),
    ``params`` what the text was filled with: ``error_message(err.key, lang, **err.params)`` renders it again.
    """

    def __init__(
        self,
        code: str,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        **params: Any,
    ) -> None:
        item = entry(code)
        self.key = code
        self.code = item.code or code
        self.status = status if status is not None else item.status
        self.headers = headers
        self.params = {k: v for k, v in params.items() if v is not None}
        self.messages = {lang: error_message(code, lang, **self.params) for lang in ("en", "zh")}
        super().__init__(self.messages["en"])

    def message(self, lang: str = "en") -> str:
        return self.messages[lang_of(lang)]

    def body(self) -> dict[str, Any]:
        """The API's error shape (docs/api.md)."""
        return {"error": {"code": self.code, "message": self.messages["en"], "message_zh": self.messages["zh"]}}


class Cancelled(UserError):
    """The client went away before its transcription finished: the work stops at the next piece."""

    def __init__(self) -> None:
        super().__init__("cancelled")
