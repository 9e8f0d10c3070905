"""The data-sharing exchange through ExchangeClient: authorise, query, conditional tickets, refusals."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
import requests
from flask import Response

from integrations.govdata import protocol
from integrations.govdata.client import ExchangeClient, GovDataError
from integrations.govdata.exchange_sim import create_simulator
from integrations.govdata.records import CONDITIONAL, RECORDS, record
from integrations.province import signing
from tests.integrations.govdata.conftest import CLIENT_TIMEOUT, SimControl, serve
from tests.integrations.govdata.support import outsider_id, with_record, without_record

APP = "YW2026120100001"
CONSENT = {"record_id": "CONSENT-1", "given_at": "2026-12-01T10:00:00+08:00", "text_version": "v1"}
PURPOSE = {"application_id": APP, "service_code": "11440100MB2C92070Q4442117001000"}
FOUND_DATASETS = [d for d in RECORDS if d != "death.medical_certificate"]  # nobody has died


def authorize(
    client: ExchangeClient,
    id_number: str,
    datasets: list[str],
    *,
    name: str = "测试人",
    overrides: dict[str, Any] | None = None,
) -> str:
    args: dict[str, Any] = {
        "subject": {"id_number": id_number, "name": name},
        "datasets": datasets,
        "purpose": PURPOSE,
        "consent": CONSENT,
        "expires_at": int(time.time()) + 3600,
    }
    return client.authorize(**(args | (overrides or {})))


def query(client: ExchangeClient, auth: str, dataset: str, id_number: str, app: str = APP) -> Any:
    return client.query(authorization_id=auth, dataset=dataset, id_number=id_number, application_id=app)


def refusal(call: Any) -> GovDataError:
    with pytest.raises(GovDataError) as err:
        call()
    assert err.value.retryable is False
    return err.value


def decide(ctl: SimControl, ticket: str, decision: str, reason: str | None = None) -> None:
    resp = ctl.post(f"tickets/{ticket}", {"decision": decision, "reason": reason})
    assert resp.status_code == 200 and resp.json()["decision"] == decision


# --- found / no record, for every dataset -------------------------------------------------------


@pytest.mark.parametrize("dataset", FOUND_DATASETS)
def test_a_person_with_a_record_gets_it(exchange, exchange_ctl, population, dataset):
    person = with_record(population, dataset)
    auth = authorize(exchange, person.id_number, [dataset], name=person.name)
    before = int(time.time())
    answer = query(exchange, auth, dataset, person.id_number)
    expected = record(person, dataset)
    if dataset in CONDITIONAL:
        assert answer.status == "pending" and answer.ticket and answer.record is None
        assert exchange.ticket(authorization_id=auth, ticket=answer.ticket).status == "pending"
        decide(exchange_ctl, answer.ticket, "approve")
        answer = exchange.ticket(authorization_id=auth, ticket=answer.ticket)
    assert answer.status == "found"
    assert answer.record == expected
    assert answer.record_id and answer.record_id.startswith(dataset)
    assert before - 1 <= answer.retrieved_at <= int(time.time()) + 1


@pytest.mark.parametrize("dataset", list(RECORDS))
def test_a_person_without_a_record_gets_no_record(exchange, exchange_ctl, population, dataset):
    id_number = without_record(population, dataset)
    auth = authorize(exchange, id_number, [dataset])
    answer = query(exchange, auth, dataset, id_number)
    if dataset in CONDITIONAL:
        assert answer.status == "pending" and answer.ticket
        decide(exchange_ctl, answer.ticket, "approve")
        answer = exchange.ticket(authorization_id=auth, ticket=answer.ticket)
    assert answer.status == "no_record"
    assert answer.record is None and answer.record_id is None


def test_somebody_outside_the_population_has_no_household_register(exchange, population):
    id_number = outsider_id(population)
    auth = authorize(exchange, id_number, ["hukou.household_register"])
    assert query(exchange, auth, "hukou.household_register", id_number).status == "no_record"


def test_one_authorisation_covers_several_datasets(exchange, population):
    person = with_record(population, "housing_fund.account")
    datasets = ["hukou.household_register", "housing_fund.account", "social_security.insurance_record"]
    auth = authorize(exchange, person.id_number, datasets, name=person.name)
    for dataset in datasets:
        assert query(exchange, auth, dataset, person.id_number).record == record(person, dataset)


def test_an_id_number_ending_in_lowercase_x_is_the_same_person(exchange, population):
    person = next(p for p in population.people.values() if p.id_number.endswith("X"))
    auth = authorize(exchange, person.id_number.lower(), ["hukou.household_register"])
    answer = query(exchange, auth, "hukou.household_register", person.id_number.lower())
    assert answer.status == "found" and answer.record["name"] == person.name


# --- conditional records ------------------------------------------------------------------------


def test_a_denied_conditional_record_carries_the_departments_reason(exchange, exchange_ctl, population):
    dataset = "tax.individual_income"
    person = with_record(population, dataset)
    auth = authorize(exchange, person.id_number, [dataset], name=person.name)
    pending = query(exchange, auth, dataset, person.id_number)
    decide(exchange_ctl, pending.ticket, "deny", "申请事项与所需数据不符")
    answer = exchange.ticket(authorization_id=auth, ticket=pending.ticket)
    assert answer.status == "denied" and answer.reason == "申请事项与所需数据不符"
    assert answer.record is None


def test_a_ticket_is_only_answered_within_its_own_authorisation(exchange, population):
    dataset = "property.real_estate_register"
    person = with_record(population, dataset)
    auth = authorize(exchange, person.id_number, [dataset], name=person.name)
    pending = query(exchange, auth, dataset, person.id_number)
    other = authorize(exchange, person.id_number, [dataset], name=person.name)
    err = refusal(lambda: exchange.ticket(authorization_id=other, ticket=pending.ticket))
    assert (err.status, err.code) == (404, "E404")
    err = refusal(lambda: exchange.ticket(authorization_id=auth, ticket="GD0000000000000000"))
    assert (err.status, err.code) == (404, "E404")


def test_deciding_an_unknown_ticket_is_a_404(exchange_ctl):
    assert exchange_ctl.post("tickets/GDNOSUCHTICKET", {"decision": "approve"}).status_code == 404


def test_conditional_records_are_approved_after_the_configured_delay(population):
    sim = serve(create_simulator({"EXCHANGE_SIM_APPROVAL_SECONDS": 0.3}))
    try:
        client = ExchangeClient(sim.url, protocol.credentials({}), timeout=CLIENT_TIMEOUT)
        dataset = "property.real_estate_register"
        person = with_record(population, dataset)
        auth = authorize(client, person.id_number, [dataset], name=person.name)
        pending = query(client, auth, dataset, person.id_number)
        assert client.ticket(authorization_id=auth, ticket=pending.ticket).status == "pending"
        time.sleep(0.4)
        answer = client.ticket(authorization_id=auth, ticket=pending.ticket)
        assert answer.status == "found" and answer.record == record(person, dataset)
    finally:
        sim.stop()


# --- refusals -----------------------------------------------------------------------------------


@pytest.fixture
def insured(population):
    """Somebody with a household register and a social insurance record."""
    return with_record(population, "social_security.insurance_record")


def test_unknown_authorisation_is_refused(exchange, insured):
    err = refusal(
        lambda: query(exchange, "SQ00000000000000000000", "hukou.household_register", insured.id_number)
    )
    assert (err.status, err.code) == (403, "E4031")


def test_revoked_authorisation_is_refused(exchange, insured):
    auth = authorize(exchange, insured.id_number, ["hukou.household_register"], name=insured.name)
    assert query(exchange, auth, "hukou.household_register", insured.id_number).status == "found"
    exchange.revoke(auth)
    err = refusal(lambda: query(exchange, auth, "hukou.household_register", insured.id_number))
    assert (err.status, err.code) == (403, "E4032")


def test_expired_authorisation_is_refused(exchange, insured):
    expired = {"expires_at": int(time.time()) - 10}
    auth = authorize(exchange, insured.id_number, ["hukou.household_register"], overrides=expired)
    err = refusal(lambda: query(exchange, auth, "hukou.household_register", insured.id_number))
    assert (err.status, err.code) == (403, "E4032")


def test_revoking_an_unknown_authorisation_is_a_404(exchange):
    err = refusal(lambda: exchange.revoke("SQNOSUCHAUTHORISATION"))
    assert (err.status, err.code) == (404, "E404")


def test_a_dataset_outside_the_authorisation_is_refused(exchange, insured):
    auth = authorize(exchange, insured.id_number, ["hukou.household_register"])
    err = refusal(lambda: query(exchange, auth, "social_security.insurance_record", insured.id_number))
    assert (err.status, err.code) == (403, "E4033")


def test_another_persons_id_number_is_refused(exchange, insured, population):
    other = next(p for p in population.people.values() if p is not insured)
    auth = authorize(exchange, insured.id_number, ["hukou.household_register"])
    err = refusal(lambda: query(exchange, auth, "hukou.household_register", other.id_number))
    assert (err.status, err.code) == (403, "E4034")


def test_another_application_is_refused(exchange, insured):
    auth = authorize(exchange, insured.id_number, ["hukou.household_register"])
    err = refusal(lambda: query(exchange, auth, "hukou.household_register", insured.id_number, "YW-OTHER"))
    assert (err.status, err.code) == (403, "E4035")


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"consent": {}}, id="no-consent"),
        pytest.param({"consent": {"record_id": "C1"}}, id="consent-without-time"),
        pytest.param({"subject": {"id_number": "110101199003078514", "name": "张三"}}, id="bad-check-char"),
        pytest.param({"subject": {"id_number": "11010119900307851", "name": "张三"}}, id="17-digits"),
        pytest.param({"subject": {"id_number": "110101199003078515"}}, id="no-name"),
        pytest.param({"datasets": ["hukou.unknown"]}, id="unknown-dataset"),
        pytest.param({"datasets": []}, id="no-dataset"),
        pytest.param({"purpose": {"service_code": "x"}}, id="no-application-id"),
    ],
)
def test_an_incomplete_authorisation_is_refused(exchange, exchange_ctl, overrides):
    err = refusal(
        lambda: authorize(exchange, "110101199003078515", ["hukou.household_register"], overrides=overrides)
    )
    assert (err.status, err.code) == (400, "E4001")
    assert exchange_ctl.stats()["authorizations"] == 0


def test_an_unknown_dataset_in_a_query_is_refused(exchange, insured):
    auth = authorize(exchange, insured.id_number, ["hukou.household_register"])
    err = refusal(lambda: query(exchange, auth, "hukou.unknown", insured.id_number))
    assert (err.status, err.code) == (400, "E4001")


# --- stats and log ------------------------------------------------------------------------------


def test_stats_and_log_count_queries_and_refusals(exchange, exchange_ctl, population):
    person = with_record(population, "housing_fund.account")
    nobody = without_record(population, "housing_fund.account")
    auth = authorize(exchange, person.id_number, ["housing_fund.account", "tax.individual_income"])
    other = authorize(exchange, nobody, ["housing_fund.account"])
    query(exchange, auth, "housing_fund.account", person.id_number)
    query(exchange, other, "housing_fund.account", nobody)
    query(exchange, auth, "tax.individual_income", person.id_number)
    refusal(lambda: query(exchange, auth, "hukou.household_register", person.id_number))
    refusal(lambda: query(exchange, auth, "housing_fund.account", nobody))
    refusal(lambda: query(exchange, "SQNONE", "housing_fund.account", nobody))

    stats = exchange_ctl.stats()
    assert stats["authorizations"] == 2
    assert stats["queries"] == 3
    assert stats["by_status"] == {"found": 1, "no_record": 1, "pending": 1}
    assert stats["refused"] == {"E4033": 1, "E4034": 1, "E4031": 1}
    assert stats["auth_failures"] == {}

    log = exchange_ctl.get("log")["queries"]
    assert [(q["authorization_id"], q["dataset"], q["application_id"], q["status"]) for q in log] == [
        (auth, "housing_fund.account", APP, "found"),
        (other, "housing_fund.account", APP, "no_record"),
        (auth, "tax.individual_income", APP, "pending"),
    ]

    exchange_ctl.reset()
    stats = exchange_ctl.stats()
    assert (stats["authorizations"], stats["queries"], stats["refused"]) == (0, 0, {})
    assert exchange_ctl.get("log")["queries"] == []
    err = refusal(lambda: query(exchange, auth, "housing_fund.account", person.id_number))
    assert err.code == "E4031"  # reset forgets authorisations


def test_people_control_api_lists_who_has_which_records(exchange_ctl, population):
    page = exchange_ctl.get("people?offset=0&limit=5")
    assert page["total"] == len(population.people)
    assert [p["id_number"] for p in page["people"]] == list(population.people)[:5]
    first = population.people[page["people"][0]["id_number"]]
    assert page["people"][0]["datasets"] == [d for d in RECORDS if record(first, d) is not None]


# --- signatures ---------------------------------------------------------------------------------


OTHER_SECRET = "another-secret-0000000000000000"
SIM_OTHER_SECRET = {"EXCHANGE_SIM_APPROVAL_SECONDS": 0, "GOVDATA_SECRET": OTHER_SECRET}
FOUND = {"code": "0", "status": "found", "record_id": "r1", "record": {"name": "冒充"}, "retrieved_at": 1}


def _unsigned(body: dict[str, Any]) -> Response:
    return Response(protocol.dumps(body), status=200, mimetype="application/json")


def test_a_request_signed_with_a_wrong_secret_is_refused_and_counted(exchange_server, exchange_ctl, insured):
    wrong = ExchangeClient(
        exchange_server.url,
        protocol.credentials({"GOVDATA_SECRET": "wrong-secret-000000000000000000"}),
        timeout=CLIENT_TIMEOUT,
    )
    with pytest.raises(GovDataError) as err:
        authorize(wrong, insured.id_number, ["hukou.household_register"])
    assert err.value.status == 401
    # The refusal is signed with the exchange's secret, which this client does not hold: it does
    # not trust the answer's code either.
    assert err.value.code is None and "unverifiable" in str(err.value)
    stats = exchange_ctl.stats()
    assert stats["auth_failures"] == {"bad_signature": 1}
    assert stats["authorizations"] == 0


def test_a_replayed_request_is_refused(exchange_server, exchange_ctl, insured):
    body = protocol.dumps(
        {
            "subject": {"id_number": insured.id_number, "name": insured.name},
            "datasets": ["hukou.household_register"],
            "purpose": PURPOSE,
            "consent": CONSENT,
            "expires_at": int(time.time()) + 3600,
        }
    )
    headers = signing.sign_request(protocol.credentials({}), "POST", "/share/v1/authorizations", body)
    headers["Content-Type"] = "application/json"
    url = f"{exchange_server.url}share/v1/authorizations"

    first = requests.post(url, data=body, headers=headers, timeout=5)
    assert first.status_code == 200 and first.json()["authorization_id"].startswith("SQ")
    second = requests.post(url, data=body, headers=headers, timeout=5)
    assert second.status_code == 401
    assert second.json()["code"] == "E401" and "replayed_nonce" in second.json()["message"]

    stats = exchange_ctl.stats()
    assert stats["authorizations"] == 1
    assert stats["auth_failures"] == {"replayed_nonce": 1}


def test_a_tampered_body_is_refused(exchange_server, exchange_ctl, insured):
    body = protocol.dumps({"authorization_id": "SQX", "ticket": "GDX"})
    headers = signing.sign_request(protocol.credentials({}), "POST", "/share/v1/tickets", body)
    resp = requests.post(
        f"{exchange_server.url}share/v1/tickets",
        data=body.replace(b"GDX", b"GDY"),
        headers=headers,
        timeout=5,
    )
    assert resp.status_code == 401
    assert exchange_ctl.stats()["auth_failures"] == {"bad_signature": 1}


def test_an_unsigned_request_is_refused(exchange_server, exchange_ctl):
    resp = requests.post(f"{exchange_server.url}share/v1/query", json={"authorization_id": "x"}, timeout=5)
    assert resp.status_code == 401 and resp.json()["code"] == "E401"
    assert exchange_ctl.stats()["auth_failures"] == {"malformed": 1}


def test_a_simulator_with_another_secret_is_not_trusted(population):
    sim = serve(create_simulator(SIM_OTHER_SECRET))
    try:
        client = ExchangeClient(sim.url, protocol.credentials({}), timeout=CLIENT_TIMEOUT)
        person = with_record(population, "hukou.household_register")
        with pytest.raises(GovDataError) as err:
            authorize(client, person.id_number, ["hukou.household_register"])
        assert err.value.status == 401 and err.value.code is None
        assert "unverifiable answer (bad_signature)" in str(err.value)
    finally:
        sim.stop()


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(lambda s: s.signed_by(OTHER_SECRET, 200, FOUND), id="other-secret"),
        pytest.param(lambda s: _unsigned(FOUND), id="unsigned"),
    ],
)
def test_an_unverifiable_answer_never_yields_data(scripted, answer):
    scripted.reply = lambda path, body: answer(scripted)
    client = ExchangeClient(scripted.url, protocol.credentials({}), timeout=CLIENT_TIMEOUT)
    with pytest.raises(GovDataError) as err:
        query(client, "SQ1", "hukou.household_register", "110101199003078515")
    assert err.value.status == 200 and err.value.code is None
    assert "unverifiable" in str(err.value)


def test_an_unverifiable_answer_is_retryable_as_documented(scripted):
    scripted.reply = lambda path, body: scripted.signed_by(OTHER_SECRET, 200, FOUND)
    client = ExchangeClient(scripted.url, protocol.credentials({}), timeout=CLIENT_TIMEOUT)
    with pytest.raises(GovDataError) as err:
        query(client, "SQ1", "hukou.household_register", "110101199003078515")
    assert err.value.retryable is True


def test_a_replayed_answer_is_not_trusted(scripted):
    """The client remembers answer nonces: the same signed answer served twice is refused."""
    answer = scripted.signed(200, {"code": "0", "authorization_id": "SQREPLAY"})
    raw, headers = answer.get_data(), dict(answer.headers)

    def replay(path, body):
        return Response(raw, status=200, headers=headers)

    scripted.reply = replay
    client = ExchangeClient(scripted.url, protocol.credentials({}), timeout=CLIENT_TIMEOUT)
    assert client.revoke("SQREPLAY") is None
    with pytest.raises(GovDataError) as err:
        client.revoke("SQREPLAY")
    assert "replayed_nonce" in str(err.value)


# --- transport failures -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 503])
def test_server_errors_are_retryable(scripted, status):
    scripted.reply = lambda path, body: scripted.signed(status, {"code": "E500", "message": "busy"})
    client = ExchangeClient(scripted.url, protocol.credentials({}), timeout=CLIENT_TIMEOUT)
    with pytest.raises(GovDataError) as err:
        client.revoke("SQ1")
    assert err.value.retryable is True and err.value.status == status


def test_connection_refused_is_retryable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = ExchangeClient(f"http://127.0.0.1:{port}/", protocol.credentials({}), timeout=CLIENT_TIMEOUT)
    with pytest.raises(GovDataError) as err:
        client.revoke("SQ1")
    assert err.value.retryable is True and err.value.status is None
