"""A hypothesis state machine drives random sequences of API actions on applications.

Citizens create drafts (a social security card, a passport, the newborn bundle), autosave valid
and invalid patches (stale or missing If-Match, read-only, locked and unknown fields), upload
materials, submit and resubmit with fresh, reused or another case's Idempotency-Keys, withdraw
and delete drafts; an operator records random handling stages; walks make allowed moves by
either side so examples reach deep into the machine; every move the machine refuses from a
case's status is tried; another account pokes at the cases. A model keeps what every case
should look like, each response is checked against it and against `states.TRANSITIONS`, and
after every step the database must show:

- one case number per application: set on the first submission, never changed, unique;
- no transition outside the machine: the timeline starts with (None → draft), every later event
  is an allowed move by the right actor, and it matches the moves the model saw succeed;
- exactly one outbox row per submission and resubmission (versions 1..n, n = submission_version),
  and one withdrawal row once withdrawn;
- status, revision, submission version and result as the model says, so a refused move
  changed nothing.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import initialize, multiple, rule, run_state_machine_as_test

from domain.applications import states
from tests.api.v1.applications.case_model import MOVE_WEIGHTS, SETTINGS, TARGETS, Case
from tests.api.v1.applications.conftest import jpeg, verified
from tests.api.v1.applications.machine_base import CASES as cases
from tests.api.v1.applications.machine_citizen import CitizenRules
from tests.api.v1.applications.machine_handler import HandlerRules


class CaseMachine(CitizenRules, HandlerRules):
    """The whole machine: the citizen and handling rules (machine_citizen.py, machine_handler.py)
    over the shared model and invariants (machine_base.py), plus the walks that use both sides."""

    @initialize(
        target=cases,
        owner=st.integers(0, 1),
        target_names=st.lists(st.sampled_from(sorted(TARGETS)), min_size=2, max_size=2),
        steps=st.lists(st.integers(0, 12), min_size=2, max_size=2),
        data=st.data(),
    )
    def start(self, owner: int, target_names: list[str], steps: list[int], data: st.DataObject) -> Any:
        """Every example starts with a case of each citizen, walked some allowed moves along, so
        the rules start from anywhere in the machine (swarm testing turns whole rules off in
        some examples, and twenty steps are few to walk the whole way)."""
        ids = [self.create(who, name) for who, name in zip((owner, 1 - owner), target_names, strict=True)]
        for case_id, count in zip(ids, steps, strict=True):
            self._walk(self.model[case_id], count, data, withdraw=False)
            self._refuse_all(self.model[case_id])
        return multiple(*ids)

    @rule(case_id=cases, steps=st.integers(1, 5), data=st.data())
    def walk(self, case_id: str, steps: int, data: st.DataObject) -> None:
        """Either side makes allowed moves: submit or resubmit (after completing the form),
        withdraw, or a handling stage."""
        self._walk(self.model[case_id], steps, data)

    def _walk(self, case: Case, steps: int, data: st.DataObject, *, withdraw: bool = True) -> None:
        for _ in range(steps):
            moves = [
                dst
                for (src, dst) in states.TRANSITIONS
                if src == case.status and (withdraw or dst != states.WITHDRAWN)
            ]
            if not moves:
                return
            # Weighted towards the long way round: withdrawing ends the walk, and a supplement
            # request opens the resubmission.
            moves = [m for m in moves for _ in range(MOVE_WEIGHTS.get(m, 3))]
            to = data.draw(st.sampled_from(sorted(moves)), label="move")
            if to == states.WITHDRAWN:
                self._withdraw(case)
            elif states.allowed(case.status, to, states.CITIZEN):
                self._complete(case, True, data)
                self._submit(case, "fresh", "ok", data)
            else:
                self._stage(case, data, to=to)


def test_random_api_sequences_keep_the_case_invariants(app, client, seeded, officer, clock):
    env = {
        "clock": clock,
        "client": client,
        "citizens": [verified(app, 0), verified(app, 1)],
        "officer": officer,
        "forms": {},
        "case_numbers": {},
        "jpeg": jpeg(),
    }
    machine = type("BoundCaseMachine", (CaseMachine,), {"env": env})
    run_state_machine_as_test(machine, settings=SETTINGS)
