"""A therapist's own schedule templates: stored as template YAML, checked by the very rules
that check `templates/*.yaml` (`content.parse_template_text`), so an own template can be
exported and promoted into the clinic's content folder unchanged, and `/session` uses it by
name like a library template. Names never shadow a library template (one name, one meaning).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import OwnTemplate
from bot.domain import schedule
from bot.domain.content import ContentLibrary, Template, parse_template_text
from bot.domain.content_files import Problem
from bot.i18n import _, ngettext
from bot.services import audit
from bot.services.errors import NotFound, UserError

NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
MAX_STEPS = 80
MAX_BODY = 20_000


@dataclass(frozen=True)
class StepRow:
    """One step as the workspace's form holds it: every field as typed."""

    key: str
    offset: str
    questionnaire: bool = False
    every: str = ""
    count: str = ""
    remind: str = ""  # "" the kind's default; "none"; or "24h, 48h"
    expires: str = ""


@dataclass(frozen=True)
class Draft:
    name: str
    description: str
    steps: tuple[StepRow, ...]


@dataclass(frozen=True)
class Checked:
    draft: Draft
    body: str  # the template YAML the draft is
    template: Template | None  # None when there are problems
    problems: list[Problem] = field(default_factory=list)

    def step_of(self, problem: Problem) -> int | None:
        """Which step (0-based) a problem's line falls in, for the form to mark it."""
        return _step_at(self.body, problem.line)


class TemplateProblems(UserError):
    def __init__(self, checked: Checked) -> None:
        super().__init__("\n".join(str(p) for p in checked.problems))
        self.checked = checked


# --- YAML both ways -------------------------------------------------------------------------


# Characters YAML does not allow in a document even inside quotes (JSON escapes the rest).
_UNPRINTABLE = re.compile("[\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def _q(value: str) -> str:
    """A double-quoted YAML string: a JSON string is one, once YAML's unprintables are
    escaped too."""
    quoted = json.dumps(value, ensure_ascii=False)
    return _UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", quoted)


def to_yaml(draft: Draft) -> str:
    lines = [f"name: {_q(draft.name)}", f"description: {_q(draft.description)}", "steps:"]
    for row in draft.steps:
        lines.append(f"  - offset: {_q(row.offset)}")
        lines.append(f"    {'questionnaire' if row.questionnaire else 'prompt'}: {_q(row.key)}")
        if row.every.strip():
            lines.append(f"    every: {_q(row.every.strip())}")
        if row.count.strip():
            count = row.count.strip()
            lines.append(f"    count: {count if count.isdigit() else _q(count)}")
        if row.remind.strip():
            said = row.remind.strip()
            if said.lower() in ("none", "no", "never"):
                lines.append("    remind: []")
            else:
                items = [p.strip() for p in said.split(",") if p.strip()]
                lines.append(f"    remind: [{', '.join(_q(p) for p in items)}]")
        if row.expires.strip():
            lines.append(f"    expires: {_q(row.expires.strip())}")
    return "\n".join(lines) + "\n"


def _step_at(body: str, line: int) -> int | None:
    step = -1
    for number, text in enumerate(body.splitlines(), 1):
        if text.startswith("  - "):
            step += 1
        if number == line:
            return step if step >= 0 else None
    return None


def from_yaml(body: str) -> Draft:
    """A stored (or library) template as form rows; only for well-formed templates."""
    data = yaml.safe_load(body) or {}
    rows: list[StepRow] = []
    for item in data.get("steps") or []:
        remind = item.get("remind")
        rows.append(
            StepRow(
                key=str(item.get("questionnaire") or item.get("prompt") or ""),
                offset=str(item.get("offset", "")),
                questionnaire="questionnaire" in item,
                every=str(item.get("every") or ""),
                count=str(item["count"]) if "count" in item else "",
                remind=(
                    ""
                    if remind is None
                    else "none"
                    if remind == []
                    else ", ".join(str(r) for r in remind)
                ),
                expires=str(item.get("expires") or ""),
            )
        )
    return Draft(str(data.get("name", "")), str(data.get("description") or ""), tuple(rows))


def check(draft: Draft, library: ContentLibrary) -> Checked:
    body = to_yaml(draft)
    extra: list[Problem] = []
    template: Template | None = None
    if not NAME.fullmatch(draft.name):
        where = _file_of(draft.name)
        extra.append(
            Problem(where, 1, _("name: use 1-32 lowercase letters, digits and '-', starting "
                                "with a letter or digit"))
        )  # fmt: skip
    elif draft.name in library.templates:
        # i18n: {name} is the template name, quoted as Python writes it ('name')
        problem = _("name {name} is a library template's: choose another name").format(
            name=repr(draft.name)
        )
        extra.append(Problem(_file_of(draft.name), 1, problem))
    if len(draft.steps) > MAX_STEPS:
        too_many = ngettext("at most {n} step", "at most {n} steps", MAX_STEPS).format(n=MAX_STEPS)
        extra.append(Problem(_file_of(draft.name), 3, too_many))
    if not extra:
        template, problems = parse_template_text(draft.name, body, library)
        extra = problems
    return Checked(draft, body, template if not extra else None, extra)


def _file_of(name: str) -> Path:
    return Path("templates") / f"{name or 'unnamed'}.yaml"


# --- stored templates -------------------------------------------------------------------------


async def list_own(session: AsyncSession, *, therapist_id: int) -> list[OwnTemplate]:
    return list(
        await session.scalars(
            select(OwnTemplate)
            .where(OwnTemplate.therapist_id == therapist_id)
            .order_by(OwnTemplate.name)
        )
    )


async def own(session: AsyncSession, *, therapist_id: int, template_id: int) -> OwnTemplate:
    row = await session.get(OwnTemplate, template_id)
    if row is None or row.therapist_id != therapist_id:
        raise NotFound(_("There is no such template of yours."))
    return row


async def find(
    session: AsyncSession, *, therapist_id: int, name: str, library: ContentLibrary
) -> Template | None:
    """An own template by name, checked against today's library (a prompt it names may have
    been removed since it was saved: then it cannot be used until it is fixed)."""
    row = await session.scalar(
        select(OwnTemplate).where(
            OwnTemplate.therapist_id == therapist_id, OwnTemplate.name == name
        )
    )
    if row is None:
        return None
    template, problems = parse_template_text(row.name, row.body, library)
    if template is None:
        first = problems[0] if problems else None
        raise UserError(
            # i18n: {problem} is the first problem the template checker found, in English
            _(
                "Your template “{name}” no longer checks out ({problem}); fix it in the workspace."
            ).format(name=name, problem=first)
        )
    return template


async def names(session: AsyncSession, *, therapist_id: int) -> list[str]:
    return list(
        await session.scalars(
            select(OwnTemplate.name)
            .where(OwnTemplate.therapist_id == therapist_id)
            .order_by(OwnTemplate.name)
        )
    )


async def save(
    session: AsyncSession,
    *,
    therapist_id: int,
    draft: Draft,
    library: ContentLibrary,
    now: datetime,
    template_id: int | None = None,
) -> OwnTemplate:
    """Create (no `template_id`) or replace one; TemplateProblems, and nothing written, when it
    does not check out or the name is taken."""
    checked = check(draft, library)
    if checked.problems:
        raise TemplateProblems(checked)
    if len(checked.body) > MAX_BODY:
        raise UserError(_("This template is too long to keep."))
    clash = await session.scalar(
        select(func.count())
        .select_from(OwnTemplate)
        .where(
            OwnTemplate.therapist_id == therapist_id,
            OwnTemplate.name == draft.name,
            OwnTemplate.id != (template_id or 0),
        )
    )
    if clash:
        raise UserError(_("You already have a template called “{name}”.").format(name=draft.name))
    if template_id is None:
        row = OwnTemplate(
            therapist_id=therapist_id,
            name=draft.name,
            body=checked.body,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
    else:
        row = await own(session, therapist_id=therapist_id, template_id=template_id)
        row.name, row.body, row.updated_at = draft.name, checked.body, now
    await session.flush()
    audit.record(
        session, at=now, actor=audit.as_therapist(therapist_id), action="template.save",
        template=draft.name,
    )  # fmt: skip
    return row


def free_name(base: str, taken: Sequence[str], library: ContentLibrary) -> str:
    stem = base[:26]
    for n in range(1, 100):
        name = f"{stem}-copy" if n == 1 else f"{stem}-copy{n}"
        if name not in taken and name not in library.templates:
            return name
    raise UserError(_("Choose a name for the copy."))


async def copy_library(
    session: AsyncSession, *, therapist_id: int, source: str, library: ContentLibrary,
    now: datetime,
) -> OwnTemplate:  # fmt: skip
    """A copy of a library template (its steps as written) under a free name."""
    template = library.templates.get(source)
    if template is None:
        raise NotFound(_("There is no library template “{name}”.").format(name=source))
    draft = from_yaml(template.path.read_text(encoding="utf-8"))
    taken = await names(session, therapist_id=therapist_id)
    draft = Draft(free_name(source, taken, library), draft.description, draft.steps)
    return await save(session, therapist_id=therapist_id, draft=draft, library=library, now=now)


async def copy_own(
    session: AsyncSession, *, therapist_id: int, template_id: int, library: ContentLibrary,
    now: datetime,
) -> OwnTemplate:  # fmt: skip
    row = await own(session, therapist_id=therapist_id, template_id=template_id)
    draft = from_yaml(row.body)
    taken = await names(session, therapist_id=therapist_id)
    draft = Draft(free_name(row.name, taken, library), draft.description, draft.steps)
    return await save(session, therapist_id=therapist_id, draft=draft, library=library, now=now)


async def delete(
    session: AsyncSession, *, therapist_id: int, template_id: int, now: datetime
) -> str:
    row = await own(session, therapist_id=therapist_id, template_id=template_id)
    await session.delete(row)
    audit.record(
        session, at=now, actor=audit.as_therapist(therapist_id), action="template.delete",
        template=row.name,
    )  # fmt: skip
    return row.name


# --- the live preview ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PreviewLine:
    at: datetime  # local to the preview's zone
    step: int
    occurrence: int | None
    key: str
    kind: str
    preparation: bool
    skipped: bool


def preview(
    template: Template,
    library: ContentLibrary,
    *,
    local_start: datetime,
    zone: ZoneInfo,
    quiet: schedule.QuietHours,
) -> list[PreviewLine]:
    """When each delivery would go for a session at `local_start` in `zone`, planned well
    ahead (so no preparation step is skipped for being past), in time order."""
    start = schedule.resolve_local(local_start, zone)
    occurrences = schedule.plan_course(
        [s.timing for s in template.steps], start, zone, quiet, start - timedelta(days=400)
    )
    lines = [
        PreviewLine(
            at=o.at.astimezone(zone),
            step=o.step,
            occurrence=o.occurrence,
            key=template.steps[o.step].prompt_key,
            kind=library.kind_of(template.steps[o.step]),
            preparation=template.steps[o.step].offset.before,
            skipped=o.skipped,
        )
        for o in occurrences
    ]
    return sorted(lines, key=lambda line: (line.at, line.step))
