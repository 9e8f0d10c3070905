"""What a citizen reads when a field is wrong, in Chinese and in English: a sentence about the
field, never the validator's internals (a regular expression) or the value typed echoed back."""

from __future__ import annotations

from tests.api.v1.applications.conftest import PASSPORT, create, patch


def _english(who: dict) -> dict:
    return who | {"headers": who["headers"] | {"Accept-Language": "en"}}


def test_a_mistyped_phone_or_date_is_explained_without_a_regular_expression(client, zhang):
    app = create(client, zhang, service_code=PASSPORT).get_json()
    typed = {"passport": {"emergency_phone": "1391234", "appointment_date": "2026-13-45"}}
    for who, lang in ((zhang, "zh"), (_english(zhang), "en")):
        resp = patch(client, who, app, typed)
        assert resp.status_code == 422
        fields = resp.get_json()["error"]["fields"]
        phone = fields["data.passport.emergency_phone"]
        date = fields["data.passport.appointment_date"]
        for message in (*phone, *date):
            assert "^" not in message and "\\d" not in message  # no pattern
            assert "1391234" not in message and "2026-13-45" not in message  # nor the value
        if lang == "en":
            assert phone == ["Not in the expected format"]
            assert date == ["Enter a date as YYYY-MM-DD"]
        else:
            assert phone == ["填写的格式不正确"]
            assert date == ["请填写正确的日期（年-月-日）"]
