"""The case state machine: statuses, their labels, and which moves are allowed by whom.

draft → submitted → received (by the province) → accepted / not_accepted / supplement_requested
→ (resubmitted) → in_review (⇄ special_procedure, ⇄ supplement_requested) → completed
(approved / denied) → result_delivered; withdrawn by the citizen before acceptance. After
acceptance a resubmission (and the province's receipt of it) goes back to review. A supplement
never given ends the case: not accepted before acceptance, completed after it.
Every move is a timeline event (domain/applications/models.py: ApplicationEvent).
"""

from __future__ import annotations

DRAFT = "draft"
SUBMITTED = "submitted"
RECEIVED = "received"
ACCEPTED = "accepted"
NOT_ACCEPTED = "not_accepted"
SUPPLEMENT_REQUESTED = "supplement_requested"
RESUBMITTED = "resubmitted"
IN_REVIEW = "in_review"
SPECIAL_PROCEDURE = "special_procedure"
COMPLETED = "completed"
RESULT_DELIVERED = "result_delivered"
WITHDRAWN = "withdrawn"

STATUSES = (
    DRAFT,
    SUBMITTED,
    RECEIVED,
    ACCEPTED,
    NOT_ACCEPTED,
    SUPPLEMENT_REQUESTED,
    RESUBMITTED,
    IN_REVIEW,
    SPECIAL_PROCEDURE,
    COMPLETED,
    RESULT_DELIVERED,
    WITHDRAWN,
)

LABELS: dict[str, tuple[str, str]] = {
    DRAFT: ("草稿", "Draft"),
    SUBMITTED: ("已提交", "Submitted"),
    RECEIVED: ("省平台已接收", "Received by the provincial platform"),
    ACCEPTED: ("已受理", "Accepted"),
    NOT_ACCEPTED: ("不予受理", "Not accepted"),
    SUPPLEMENT_REQUESTED: ("待补正", "Supplement requested"),  # fields, materials or both
    RESUBMITTED: ("已补正", "Resubmitted"),
    IN_REVIEW: ("审核中", "In review"),
    SPECIAL_PROCEDURE: ("特别程序中", "Special procedure"),
    COMPLETED: ("已办结", "Completed"),
    RESULT_DELIVERED: ("结果已送达", "Result delivered"),
    WITHDRAWN: ("已撤回", "Withdrawn"),
}

RESULTS = ("approved", "denied")
RESULT_LABELS = {"approved": ("准予办理", "Approved"), "denied": ("不予办理", "Denied")}

# Who may make a move: the citizen through /v1, or the handling side (the province's
# callbacks, or an operator recording a stage through the admin API).
CITIZEN = "citizen"
HANDLER = "handler"

TRANSITIONS: dict[tuple[str, str], str] = {
    (DRAFT, SUBMITTED): CITIZEN,
    (SUPPLEMENT_REQUESTED, RESUBMITTED): CITIZEN,
    (SUBMITTED, WITHDRAWN): CITIZEN,
    (RECEIVED, WITHDRAWN): CITIZEN,
    (SUPPLEMENT_REQUESTED, WITHDRAWN): CITIZEN,
    (RESUBMITTED, WITHDRAWN): CITIZEN,
    (SUBMITTED, RECEIVED): HANDLER,
    (RESUBMITTED, RECEIVED): HANDLER,
    (RECEIVED, ACCEPTED): HANDLER,
    (RECEIVED, NOT_ACCEPTED): HANDLER,
    (RECEIVED, SUPPLEMENT_REQUESTED): HANDLER,
    (RESUBMITTED, ACCEPTED): HANDLER,
    (RESUBMITTED, NOT_ACCEPTED): HANDLER,
    (RESUBMITTED, SUPPLEMENT_REQUESTED): HANDLER,
    (RESUBMITTED, IN_REVIEW): HANDLER,
    (ACCEPTED, IN_REVIEW): HANDLER,
    (ACCEPTED, COMPLETED): HANDLER,
    (ACCEPTED, SUPPLEMENT_REQUESTED): HANDLER,
    (IN_REVIEW, SUPPLEMENT_REQUESTED): HANDLER,
    (IN_REVIEW, SPECIAL_PROCEDURE): HANDLER,
    (SPECIAL_PROCEDURE, IN_REVIEW): HANDLER,
    (IN_REVIEW, COMPLETED): HANDLER,
    (COMPLETED, RESULT_DELIVERED): HANDLER,
    (RECEIVED, IN_REVIEW): HANDLER,  # after acceptance only (AFTER_ACCEPTANCE)
    # A supplement never given: before acceptance the case is not accepted (不予受理), after it
    # decided as it stands (办结, usually denied); the citizen no longer waits on a closed case.
    (SUPPLEMENT_REQUESTED, NOT_ACCEPTED): HANDLER,  # before acceptance only
    (SUPPLEMENT_REQUESTED, COMPLETED): HANDLER,  # after acceptance only
    # The closing word crossing the citizen's late resubmission (or the province's receipt of
    # it): the case is decided as the province decided it, not left 已补正 for good.
    (RESUBMITTED, COMPLETED): HANDLER,  # after acceptance only
    (RECEIVED, COMPLETED): HANDLER,  # after acceptance only
}

# Acceptance (受理) happens once. After it, a resubmission answers a supplement asked for during
# review: the province's receipt of it ("received") or the resubmission itself goes back to
# review or is asked again, never accepted a second time and never "not accepted".
BEFORE_ACCEPTANCE = frozenset({
    (RECEIVED, ACCEPTED), (RECEIVED, NOT_ACCEPTED), (RESUBMITTED, ACCEPTED), (RESUBMITTED, NOT_ACCEPTED),
    (SUPPLEMENT_REQUESTED, NOT_ACCEPTED),
})  # fmt: skip
AFTER_ACCEPTANCE = frozenset({
    (RECEIVED, IN_REVIEW), (SUPPLEMENT_REQUESTED, COMPLETED), (RESUBMITTED, COMPLETED), (RECEIVED, COMPLETED),
})  # fmt: skip

# The promised time limit runs from acceptance; these states stop the clock: waiting for the
# citizen's supplement, or a special procedure. The clock runs again once the citizen has
# resubmitted (before acceptance it has not started yet).
PAUSED = frozenset({SUPPLEMENT_REQUESTED, SPECIAL_PROCEDURE})
# Moves that mean the case was accepted: review after a resubmission implies acceptance too.
ACCEPTANCE = frozenset({ACCEPTED, IN_REVIEW})
# Cases that will not move any more: no due date, never overdue.
FINAL = frozenset({NOT_ACCEPTED, COMPLETED, RESULT_DELIVERED, WITHDRAWN})
# The citizen may edit the form (all of it in a draft, the named fields in a supplement).
EDITABLE = frozenset({DRAFT, SUPPLEMENT_REQUESTED})
# States the handling side may move a case into from outside (callbacks, operators).
HANDLER_TARGETS = frozenset(to for (_, to), who in TRANSITIONS.items() if who == HANDLER)


def allowed(current: str, target: str, actor: str, *, accepted: bool = False) -> bool:
    """Whether `actor` may move a case from `current` to `target`; `accepted`: the case was
    accepted (受理) at some point (its clock started)."""
    move = (current, target)
    if move in (BEFORE_ACCEPTANCE if accepted else AFTER_ACCEPTANCE):
        return False
    return TRANSITIONS.get(move) == actor


def withdrawable(current: str, *, accepted: bool) -> bool:
    """The citizen may withdraw only before acceptance (受理): a supplement asked for during
    review, and the resubmission that answers it, come after it."""
    return not accepted and allowed(current, WITHDRAWN, CITIZEN, accepted=accepted)


def label(status: str, lang: str = "zh") -> str:
    zh, en = LABELS[status]
    return en if lang == "en" else zh
