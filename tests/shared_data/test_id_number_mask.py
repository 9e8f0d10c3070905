"""One ID number, one mask: the identity screen and the wallet show a citizen's number alike."""

from __future__ import annotations

from tests.shared_data.conftest import certs, person_where, verified_as
from tests.shared_data.test_wallet import DRIVING, ID_CARD, of_type, wallet


def test_the_identity_and_the_wallet_show_the_same_masked_id_number(app, client):
    person = person_where(lambda p: any(c.state == "01" for c in certs(p, ID_CARD)) and certs(p, DRIVING))
    who = verified_as(app, person)
    identity = client.get("/v1/identity", headers=who["headers"]).get_json()
    items = wallet(client, who)
    shown = {identity["id_number"], of_type(items, ID_CARD)["number"], of_type(items, DRIVING)["number"]}
    assert shown == {person.id_number[:3] + "*" * 11 + person.id_number[-4:]}


def test_one_rule_for_id_numbers_in_responses_certificates_and_log_lines():
    from core.masking import mask_id_number, mask_number, redact_text

    number = "11010519491231002X"
    assert mask_id_number(number) == "110***********002X"
    assert mask_number(number.lower(), id_bearing=True) == "110***********002x"  # on an ID card
    assert redact_text(f"身份证 {number} 核验失败") == "身份证 110***********002X 核验失败"
    assert (
        mask_number("E12345678") == "E1*****78" and mask_number("91440101MA5CXXXX1Q") == "9144**********XX1Q"
    )


def test_an_18_digit_number_of_another_certificate_keeps_its_first_and_last_four():
    """A unified social credit code can be 18 digits: it is no ID number, and shows as
    docs/shared-data.md says (first four, last four), not 911***********3766."""
    from core.masking import mask_number

    assert mask_number("911100001000003766") == "9111**********3766"
    assert mask_number("911100001000003766", id_bearing=True) == "911***********3766"
