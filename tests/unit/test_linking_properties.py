"""`linking.file` over generated interleavings of questions and messages.

A small in-memory patient receives reflections and check-ins and sends words or bare numbers
at varied pauses, sometimes as a Telegram reply to an earlier prompt. The properties are the
spec's, stated without the rule's own arithmetic:
- one reply's messages never straddle a prompt sent to the patient, and all arrive within
  JOIN_CAP of the first;
- an answer belongs to a question sent before it;
- a bare number in range, while a check-in is the newest open prompt, answers that check-in;
- words never answer a check-in, and a check-in takes one answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.domain import linking

START = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
WINDOW = timedelta(hours=72)
SCALE = range(0, 11)


@dataclass
class Sent:
    id: int
    kind: str
    at: datetime
    seq: int  # the order of events, which the clock alone cannot tell at one instant
    answered: bool = False


@dataclass
class Kept:
    delivery_id: int | None
    choice: bool
    messages: list[datetime] = field(default_factory=list)
    length: int = 0
    seqs: list[int] = field(default_factory=list)


@dataclass
class Patient:
    now: datetime = START
    sent: list[Sent] = field(default_factory=list)
    kept: list[Kept] = field(default_factory=list)

    def newest_open(self, kind: str) -> Sent | None:
        rows = [s for s in self.sent if s.kind == kind and not s.answered]
        return max(rows, key=lambda s: (s.at, s.id), default=None)

    def question(self, row: Sent | None) -> linking.Question | None:
        if row is None:
            return None
        closed = row.kind == "checkin" and row.answered
        return linking.Question(row.id, row.kind, row.at, closed)

    def say(self, text: str, reply_to: int | None, seq: int) -> linking.Filing:
        last_text = next((k for k in reversed(self.kept) if not k.choice), None)
        previous = (
            linking.Previous(
                last_text.delivery_id,
                last_text.messages[0],
                last_text.messages[-1],
                last_text.length,
            )
            if last_text is not None and last_text is (self.kept[-1] if self.kept else None)
            else None
        )
        replied = (
            self.sent[reply_to] if reply_to is not None and reply_to < len(self.sent) else None
        )

        def choice_value(delivery_id: int) -> str | None:
            assert self.sent[delivery_id].kind == "checkin"
            return text if text.isdigit() and int(text) in SCALE else None

        filing = linking.file(
            linking.Facts(
                self.question(replied),
                self.question(self.newest_open("reflection")),
                self.question(self.newest_open("checkin")),
                previous,
                max((s.at for s in self.sent), default=None),
            ),
            now=self.now,
            answer_window=WINDOW,
            added_length=len(text),
            choice_value=choice_value,
        )
        if isinstance(filing, linking.Join):
            assert previous is not None and last_text is not None
            last_text.messages.append(self.now)
            last_text.seqs.append(seq)
            last_text.length += len(text) + 1
        elif isinstance(filing, linking.Choice):
            self.kept.append(Kept(filing.delivery_id, True, [self.now], seqs=[seq]))
            self.sent[filing.delivery_id].answered = True
        else:
            target = filing.delivery_id if isinstance(filing, linking.Answer) else None
            self.kept.append(Kept(target, False, [self.now], len(text), [seq]))
            if target is not None:
                self.sent[target].answered = True
        return filing


asks = st.tuples(st.just("ask"), st.sampled_from(["reflection", "checkin"]))
says = st.tuples(
    st.just("say"),
    st.one_of(st.sampled_from(["3", "10", "0", "12"]), st.sampled_from(["ok", "a bit tired"])),
    st.one_of(st.none(), st.integers(0, 6)),
)
pauses = st.sampled_from([timedelta(seconds=s) for s in (0, 20, 90, 170, 185, 400, 4000)])
timelines = st.lists(st.tuples(pauses, st.one_of(asks, says)), min_size=1, max_size=25)


LONG_BURST = [(timedelta(seconds=170), ("say", "still going", None))] * 6


@settings(max_examples=300, deadline=None)
@given(timelines)
@example(LONG_BURST)
def test_filing_keeps_the_specs_promises(
    timeline: list[tuple[timedelta, tuple[object, ...]]],
) -> None:
    patient = Patient()
    for seq, (pause, event) in enumerate(timeline):
        patient.now += pause
        if event[0] == "ask":
            patient.sent.append(Sent(len(patient.sent), str(event[1]), patient.now, seq))
            continue
        text, reply_to = str(event[1]), event[2]
        assert reply_to is None or isinstance(reply_to, int)
        newest = max(
            (s for s in patient.sent if not s.answered),
            key=lambda s: (s.at, s.id),
            default=None,
        )
        filing = patient.say(text, reply_to, seq)
        in_scale = text.isdigit() and int(text) in SCALE
        if in_scale and reply_to is None and newest is not None and newest.kind == "checkin":
            assert filing == linking.Choice(newest.id, text)
        if not in_scale:
            assert not isinstance(filing, linking.Choice)

    choices = [k.delivery_id for k in patient.kept if k.choice]
    assert len(choices) == len(set(choices))
    for kept in patient.kept:
        first, last = kept.messages[0], kept.messages[-1]
        assert last - first <= linking.JOIN_CAP
        assert not any(kept.seqs[0] < s.seq < kept.seqs[-1] for s in patient.sent), (
            "joined across a prompt"
        )
        if kept.delivery_id is not None:
            assert patient.sent[kept.delivery_id].at <= first
