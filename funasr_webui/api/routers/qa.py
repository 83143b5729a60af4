"""/api/v1/rules and /api/v1/qa: quality rules (create, read, update, delete, import), re-checking the history,
the summary and the report of hits (through the service only)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from ...errors import UserError
from ...qa.report import MEDIA_TYPES
from ..dependencies import ServiceDep, only_params, require_api_auth
from ..errors import ERROR_RESPONSES
from .history import _date

router = APIRouter(
    prefix="/api/v1", tags=["quality checks"], dependencies=[Depends(require_api_auth)], responses=ERROR_RESPONSES
)

MAX_BODY_BYTES = 1 << 20  # a rules file of 500 rules of 100 phrases is far below this
RULE_EXAMPLE = {"name": "greeting", "kind": "required", "phrases": ["您好", "你好"], "within_s": [0, 15]}
RULE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}, "example": RULE_EXAMPLE}},
    }
}
RULES_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "array", "items": {"type": "object"}},
                                         "example": [RULE_EXAMPLE]}},
    }
}  # fmt: skip


async def _body(request: Request) -> bytes:
    data = await request.body()
    if len(data) > MAX_BODY_BYTES:
        raise UserError("bad_rules_file", detail="the body is over 1 MiB")
    return data


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await _body(request))
    except ValueError as e:
        raise UserError("bad_rules_file", detail=f"the body is not JSON: {e}") from None
    if not isinstance(data, dict):
        raise UserError("rule_not_object", rule="?")
    return data


def _rules_answer(service: Any) -> dict[str, Any]:
    return {"rules": [r.to_dict(with_id=True) for r in service.qa.rules()], "hotwords": service.qa.hotwords_on()}


@router.get("/rules", summary="The quality rules, and whether their phrases go to the engine as hotwords")
def list_rules(service: ServiceDep) -> dict[str, Any]:
    return _rules_answer(service)


@router.post("/rules", summary="Add one rule", openapi_extra=RULE_BODY, status_code=201)
async def create_rule(request: Request, service: ServiceDep) -> JSONResponse:
    rule = service.qa.add_rule(await _json_object(request))
    return JSONResponse(rule.to_dict(with_id=True), status_code=201)


@router.post(
    "/rules/import",
    summary="Add or update rules from a JSON list (by name); replace=true deletes the others",
    openapi_extra=RULES_BODY,
    dependencies=[only_params("replace")],
)
async def import_rules(request: Request, service: ServiceDep, replace: bool = False) -> dict[str, Any]:
    added, updated, deleted = service.qa.import_rules(await _body(request), replace=replace)
    return {"added": added, "updated": updated, "deleted": deleted, **_rules_answer(service)}


@router.put("/rules/hotwords", summary="Rules' phrases as hotwords: on or off", dependencies=[only_params("on")])
def set_hotwords(service: ServiceDep, on: bool) -> dict[str, Any]:
    service.qa.set_hotwords(on)
    return {"hotwords": service.qa.hotwords_on()}


@router.get("/rules/{rule_id}", summary="One rule")
def get_rule(rule_id: int, service: ServiceDep) -> dict[str, Any]:
    return service.qa.rule(rule_id).to_dict(with_id=True)


@router.put("/rules/{rule_id}", summary="Replace one rule", openapi_extra=RULE_BODY)
async def update_rule(rule_id: int, request: Request, service: ServiceDep) -> dict[str, Any]:
    return service.qa.update_rule(rule_id, await _json_object(request)).to_dict(with_id=True)


@router.delete("/rules/{rule_id}", summary="Delete one rule (its hits stay until the records are re-checked)")
def delete_rule(rule_id: int, service: ServiceDep) -> dict[str, Any]:
    service.qa.delete_rule(rule_id)
    return {"deleted": rule_id}


DateFrom = Annotated[str | None, Query(description="ISO date or date-time, inclusive (naive = local)")]
DateTo = Annotated[str | None, Query(description="ISO date (whole day included) or date-time")]


@router.post(
    "/qa/apply",
    summary="Check the stored records of a date range again with the active rules (no re-transcription)",
    dependencies=[only_params("date_from", "date_to")],
)
def apply_rules(service: ServiceDep, date_from: DateFrom = None, date_to: DateTo = None) -> dict[str, Any]:
    n, hits = service.qa.apply(_date(date_from, "date_from"), _date(date_to, "date_to"))
    return {"checked": n, "hits": hits}


@router.get(
    "/qa/summary",
    summary="Calls checked, calls flagged, hits per rule",
    dependencies=[only_params("date_from", "date_to")],
)
def qa_summary(service: ServiceDep, date_from: DateFrom = None, date_to: DateTo = None) -> dict[str, Any]:
    return service.qa.summary(_date(date_from, "date_from"), _date(date_to, "date_to"))


@router.get(
    "/qa/report",
    summary="Every hit of a date range: the record's id and file name, rule, kind, phrase, start, end, sentence",
    dependencies=[only_params("date_from", "date_to", "rule", "format")],
    response_class=Response,
)
def qa_report(
    service: ServiceDep,
    date_from: DateFrom = None,
    date_to: DateTo = None,
    rule: Annotated[str | None, Query(max_length=100, description="only this rule's hits")] = None,
    format: Literal["json", "csv", "xlsx"] = "json",
) -> Response:
    data = service.qa.report_file(format, _date(date_from, "date_from"), _date(date_to, "date_to"), rule)
    headers = {}
    if format != "json":
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        headers["Content-Disposition"] = f'attachment; filename="funasr-qa-{stamp}.{format}"'
    return Response(data, media_type=MEDIA_TYPES[format], headers=headers)
