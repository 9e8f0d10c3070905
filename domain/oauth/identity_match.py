"""identity.match: does a name and ID number an app already holds belong to this citizen?

The answer is yes or no, never the number itself. The ID number is compared by its blind index;
the name is compared after decrypting the stored one inside this function (an access to a full
value, so audited with the asking app), both in the canonical form of
domain.identity.documents.canonical_name (look-alike dots, spaces typed inside the name). Each
app may ask about a citizen a few times an hour (PER_HOUR), and get "no" only a few times a day
(MISMATCHES_PER_DAY), so the scope cannot be turned into a way of guessing an ID number: an app
that knows a citizen's region and birth date has about 500 sequence numbers left to try (the
check digit follows), 100 days of its "no"s instead of two days of its hourly allowance.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from core import audit
from core.crypto import Encryptor, LookupHasher, constant_time_equal
from core.ratelimit import RateLimiter
from domain.identity.binding import id_lookup, identity_of, person_from
from domain.identity.deps import NAME_PURPOSE
from domain.identity.documents import canonical_name
from domain.oauth.errors import IdentityNotVerified

PER_HOUR = 10
MISMATCHES_PER_DAY = 5


def match(
    session: Session,
    *,
    hasher: LookupHasher,
    encryptor: Encryptor,
    ratelimiter: RateLimiter,
    account_id: str,
    client_id: str,
    name: str,
    id_number: str,
    request_id: str | None = None,
) -> bool:
    """True when both match the citizen's verified identity. Raises IdentityInvalid (malformed
    input), IdentityNotVerified or RateLimited. Commits the audit line."""
    # A malformed question tells nothing about the citizen: refused before it uses up a turn.
    person = person_from(name, id_number)
    pair = f"{client_id}:{account_id}"
    ratelimiter.check("oauth-identity-mismatch", pair, limit=MISMATCHES_PER_DAY, window=86400)
    ratelimiter.hit("oauth-identity-match", pair, limit=PER_HOUR, window=3600)
    verified = identity_of(session, account_id)
    if verified is None:
        raise IdentityNotVerified()
    same_id = constant_time_equal(id_lookup(hasher, person.id_number), verified.id_lookup)
    # Both sides in the one canonical form (dots, inner spaces): 买买提.艾力 is 买买提·艾力.
    stored = canonical_name(encryptor.decrypt(verified.name_enc, purpose=NAME_PURPOSE))
    same_name = constant_time_equal(stored, person.name)
    audit.record(
        session, actor_type="client", actor_id=client_id, action="identity.match", target_type="account",
        target_id=account_id, request_id=request_id, details={"matched": same_id and same_name},
    )  # fmt: skip
    session.commit()
    if not (same_id and same_name):
        ratelimiter.record("oauth-identity-mismatch", pair, window=86400)
    return same_id and same_name
