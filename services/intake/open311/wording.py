"""What a civic app shows a resident: the catalogue and a case's life in Open311's words.

Chinese by default (the center's residents), English when the app's Accept-Language prefers it.
Translation only: the facts come from the catalogue and the read model.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from shared.catalogue import Catalogue, ServiceItem

Lang = Literal["zh", "en"]


def language(accept_language: str | None) -> Lang:
    """The app's preference between Chinese and English (Accept-Language with q-values)."""
    best: tuple[float, Lang] = (0.0, "zh")
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        lang = tag.strip().lower()[:2]
        if lang not in ("zh", "en"):
            continue
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        if q > best[0]:
            best = (q, "zh" if lang == "zh" else "en")
    return best[1]


def _pick(lang: Lang, zh: str, en: str) -> str:
    return zh if lang == "zh" else en


#: Beside a request's expected date that may move (docs/calendar.md, "What provisional means").
PROVISIONAL: dict[Lang, str] = {
    "zh": "预计办结日期暂按法定节假日推算，以国务院公布的放假安排为准",
    "en": "the expected date is provisional: counted on the statutory holidays, it may move "
          "once the holiday schedule is published"}
PROVISIONAL_JOIN: dict[Lang, str] = {"zh": "；", "en": "; "}


def service_notice(item: ServiceItem | None, lang: Lang) -> str | None:
    if item is None:
        return None
    if item.typical_days == 0:
        return _pick(lang, "通常当场办结", "Usually done on the spot")
    return _pick(lang, f"通常{item.typical_days}个工作日内办结",
                 f"Usually done within {item.typical_days} working days")


# -- the catalogue as GET services and GET services/{code} -----------------------------------


def service(catalogue: Catalogue, item: ServiceItem, lang: Lang) -> dict[str, Any]:
    category = catalogue.category(item.category)
    policy = _pick(lang, item.policy_basis.zh, item.policy_basis.en)
    # The plain-words summary first (what a resident reads in an app), then basis and time.
    plain = _pick(lang, item.summary.zh, item.summary.en + " ") if item.summary else ""
    return {
        "service_code": item.code,
        "service_name": _pick(lang, item.name_zh, item.name_en),
        "description": plain + _pick(lang, f"办理依据：{policy}。{service_notice(item, lang)}。",
                                     f"Policy basis: {policy}. {service_notice(item, lang)}."),
        "metadata": bool(item.documents),
        "type": None,  # filled in by the route: realtime or batch, from settings
        "keywords": ", ".join(item.keywords),
        "group": _pick(lang, category.name_zh, category.name_en),
    }


def definition(item: ServiceItem, lang: Lang) -> dict[str, Any]:
    """What the item needs, for the resident to read before coming: the documents to bring, the
    policy basis and the usual time. Informational attributes (``variable`` false): the counter
    checks documents at step 3, nothing here asks the resident to type them."""

    def attribute(order: int, code: str, description: str) -> dict[str, Any]:
        return {"variable": False, "code": code, "datatype": "string", "required": False,
                "datatype_description": None, "order": order, "description": description,
                "values": []}

    attributes = [
        attribute(i, f"DOC_{i}", _pick(lang, f"需携带：{d.zh}", f"Bring: {d.en}"))
        for i, d in enumerate(item.documents, start=1)
    ]
    n = len(attributes)
    attributes.append(attribute(n + 1, "POLICY_BASIS", _pick(
        lang, f"办理依据：{item.policy_basis.zh}", f"Policy basis: {item.policy_basis.en}")))
    attributes.append(attribute(n + 2, "TIME_LIMIT", service_notice(item, lang) or ""))
    return {"service_code": item.code, "attributes": attributes}


# -- a case's life as status_notes -----------------------------------------------------------

_ELIGIBILITY = {
    "eligible": ("经核，符合办理条件", "Eligible"),
    "not_eligible": ("经核，暂不符合办理条件", "Not eligible"),
    "more_documents": ("需补充材料", "More documents needed"),
}
_ACTIONS = {
    "done_on_the_spot": ("已当场办理", "Done on the spot"),
    "referred": ("已转介", "Referred"),
    "escalated": ("已上报协调", "Escalated for coordination"),
    "documents_collected": ("材料已收取，正在办理", "Documents collected; in progress"),
}
_OUTCOMES = {
    "resolved": ("已办结", "Resolved"),
    "partly_resolved": ("部分办结", "Partly resolved"),
    "cannot_be_resolved": ("无法办理", "Cannot be resolved"),
}
LIFE_EVENTS = ("RequestHeard", "RequestRestated", "ConcernsNoted", "GuidanceGiven",
               "ActionTaken", "CaseResolved", "CaseReopened")
"""The events that move a case along its life: the latest one speaks for the case."""


def _with(lang: Lang, words: tuple[str, str], detail: str | None) -> str:
    head = _pick(lang, *words)
    if not detail:
        return head
    return f"{head}：{detail}" if lang == "zh" else f"{head}: {detail}"


def status_notes(event_type: str | None, payload_json: str | None, lang: Lang) -> str:
    """The case's life (opened, heard, guided, served, resolved, reopened) in a sentence."""
    p: dict[str, Any] = json.loads(payload_json) if payload_json else {}
    if event_type is None:
        return _pick(lang, "已受理，等待工作人员倾听诉求", "Received; waiting to be heard")
    if event_type in ("RequestHeard", "RequestRestated", "ConcernsNoted"):
        return _pick(lang, "诉求已收到，工作人员正在了解情况",
                     "Request heard; the center is looking into it")
    if event_type == "GuidanceGiven":
        words = _ELIGIBILITY.get(p.get("eligibility", ""), ("已解释政策", "Policy explained"))
        detail = "、".join(p.get("missing_documents") or []) if lang == "zh" else ", ".join(
            p.get("missing_documents") or [])
        note = _with(lang, words, detail)
        if p.get("promised"):
            note += _pick(lang, f"。承诺：{p['promised']}", f". Promised: {p['promised']}")
        return note
    if event_type == "ActionTaken":
        return _with(lang, _ACTIONS.get(p.get("kind", ""), ("正在办理", "In progress")),
                     p.get("referred_to"))
    if event_type == "CaseResolved":
        return _with(lang, _OUTCOMES.get(p.get("outcome", ""), ("已办结", "Resolved")),
                     p.get("explanation"))
    if event_type == "CaseReopened":
        return _with(lang, ("已重新办理", "Reopened"), p.get("reason"))
    return _pick(lang, "正在办理", "In progress")
