"""Errors a user can act on, with their message in English and Chinese."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or a refused request: shown to the user as is, never a stack trace."""

    status = 422  # HTTP status the API answers with

    def __init__(self, code: str, en: str, zh: str, status: int | None = None) -> None:
        super().__init__(en)
        self.code = code
        self.messages = {"en": en, "zh": zh}
        if status is not None:
            self.status = status

    def message(self, lang: str = "en") -> str:
        return self.messages["zh" if lang.lower().startswith("zh") else "en"]


class Cancelled(UserError):
    """The client went away before its transcription finished: the work stops at the next piece."""

    def __init__(self) -> None:
        super().__init__("cancelled", "the client went away; transcription stopped", "客户端已断开，识别已停止", 499)
