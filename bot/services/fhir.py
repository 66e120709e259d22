"""One patient's measurements as a FHIR R4 `Bundle` (type `collection`), for a clinic's EHR:
the Patient by pseudonym only, a `QuestionnaireResponse` per answered (or partly answered)
questionnaire, an `Observation` per questionnaire total (LOINC-coded for PHQ-9 and GAD-7) and
per check-in answer. Plain JSON built here; the tests validate it with `fhir.resources` (R4B).

Ids are stable UUIDs derived from the rows, so exporting twice gives the same references.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.crypto import Cipher
from bot.db.models import Delivery, DeliveryState, Patient, PromptKind, Reply, ReplyKind
from bot.domain.content import ContentLibrary
from bot.domain.questionnaires import PROFILES, Questionnaire

_NAMESPACE = uuid.UUID("6f1c2f4e-53a4-4a8e-9d7b-2f0d7c1e9a10")  # Afterglow's own, fixed
PSEUDONYM_SYSTEM = "urn:afterglow:pseudonym"
QUESTIONNAIRE_SYSTEM = "urn:afterglow:questionnaire"
CHECKIN_SYSTEM = "urn:afterglow:checkin"
LOINC = "http://loinc.org"
_SURVEY = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "survey",
            "display": "Survey",
        }
    ]
}


def _urn(*parts: object) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, '/'.join(map(str, parts)))}"


def _when(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


# A questionnaire still open is in progress; one whose window closed unfinished stopped.
_STATUS = {DeliveryState.ANSWERED: "completed", DeliveryState.PARTIAL: "stopped"}


def _entry(full_url: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": full_url, "resource": resource}


async def patient_bundle(
    session: AsyncSession,
    patient: Patient,
    content: ContentLibrary,
    cipher: Cipher,
    now: datetime,
) -> dict[str, Any]:
    patient_url = _urn("patient", patient.id)
    entries = [
        _entry(
            patient_url,
            {
                "resourceType": "Patient",
                "identifier": [{"system": PSEUDONYM_SYSTEM, "value": patient.pseudonym}],
            },
        )
    ]
    subject = {"reference": patient_url}
    rows = await session.execute(
        select(Reply, Delivery)
        .join(Delivery, Delivery.id == Reply.delivery_id)
        .where(
            Reply.patient_id == patient.id,
            Reply.kind.in_([ReplyKind.ITEM, ReplyKind.CHOICE]),
        )
        .order_by(Reply.received_at, Reply.id)
    )
    items: dict[int, list[Reply]] = defaultdict(list)
    questionnaires: dict[int, Delivery] = {}
    for reply, delivery in rows.all():
        if reply.kind is ReplyKind.ITEM and delivery.kind is PromptKind.QUESTIONNAIRE:
            items[delivery.id].append(reply)
            questionnaires[delivery.id] = delivery
        elif reply.kind is ReplyKind.CHOICE:
            entries.extend(_checkin(reply, delivery, content, cipher, subject))
    for delivery_id, delivery in questionnaires.items():
        q = content.questionnaires.get(delivery.prompt_key or "")
        if q is None:
            continue
        entries.extend(_questionnaire(delivery, items[delivery_id], q, cipher, subject))
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid5(_NAMESPACE, f"bundle/{patient.id}/{_when(now)}")),
        "type": "collection",
        "timestamp": _when(now),
        "entry": entries,
    }


def _checkin(
    reply: Reply, delivery: Delivery, content: ContentLibrary, cipher: Cipher, subject: Any
) -> list[dict[str, Any]]:
    if reply.choice_value_enc is None:
        return []
    value = cipher.decrypt(reply.choice_value_enc)
    prompt = content.prompts.get(delivery.prompt_key or "")
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [_SURVEY],
        "code": {
            "coding": [{"system": CHECKIN_SYSTEM, "code": delivery.prompt_key or "checkin"}],
            "text": delivery.prompt_key or "check-in",
        },
        "subject": subject,
        "effectiveDateTime": _when(reply.received_at),
    }
    if prompt is not None and prompt.scale is not None and value.isdigit():
        observation["valueInteger"] = int(value)
    else:
        label = prompt.choice_label(value) if prompt is not None else None
        observation["valueString"] = label or value
    return [_entry(_urn("reply", reply.id), observation)]


def _questionnaire(
    delivery: Delivery, replies: list[Reply], q: Questionnaire, cipher: Cipher, subject: Any
) -> list[dict[str, Any]]:
    values: dict[int, int] = {}
    answers = []
    for reply in sorted(replies, key=lambda r: r.item or 0):
        if reply.item is None or reply.choice_value_enc is None:
            continue
        number = reply.item
        if not 1 <= number <= len(q.items):
            continue
        value = int(cipher.decrypt(reply.choice_value_enc))
        values[number] = value
        item = q.items[number - 1]
        label = next((o.label for o in item.options if o.value == value), str(value))
        answers.append(
            {
                "linkId": str(number),
                "text": item.text,
                "answer": [
                    {
                        "valueCoding": {
                            "system": f"{QUESTIONNAIRE_SYSTEM}:{q.key}:{number}",
                            "code": str(value),
                            "display": label,
                        }
                    }
                ],
            }
        )
    complete = delivery.state is DeliveryState.ANSWERED
    authored = delivery.answered_at or max(r.updated_at for r in replies)
    response_url = _urn("questionnaire-response", delivery.id)
    out = [
        _entry(
            response_url,
            {
                "resourceType": "QuestionnaireResponse",
                "questionnaire": f"{QUESTIONNAIRE_SYSTEM}:{q.key}",
                "status": _STATUS.get(delivery.state, "in-progress"),
                "subject": subject,
                "authored": _when(authored),
                "item": answers,
            },
        )
    ]
    total = q.total([values.get(n) for n in range(1, len(q.items) + 1)]) if complete else None
    if total is None:
        return out
    profile = PROFILES.get(q.key)
    coding = (
        [{"system": LOINC, "code": profile.loinc_total, "display": f"{profile.name} total score"}]
        if profile is not None
        else [{"system": QUESTIONNAIRE_SYSTEM, "code": f"{q.key}-total"}]
    )
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [_SURVEY],
        "code": {"coding": coding, "text": f"{q.title} total"},
        "subject": subject,
        "effectiveDateTime": _when(authored),
        "valueInteger": total,
        "derivedFrom": [{"reference": response_url}],
    }
    band = q.band(total)
    if band is not None:
        observation["interpretation"] = [{"text": band.label}]
    out.append(_entry(_urn("questionnaire-total", delivery.id), observation))
    return out


def to_json(bundle: dict[str, Any]) -> bytes:
    return json.dumps(bundle, ensure_ascii=False, indent=2).encode("utf-8")
