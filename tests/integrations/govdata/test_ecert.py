"""The e-certificate library through EcertClient: list, detail, files, refusals, control API."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import xml.etree.ElementTree as ET
import zipfile

import pytest

from integrations.govdata import protocol
from integrations.govdata.certificates import STATES, TYPES
from integrations.govdata.client import EcertClient, GovDataError
from integrations.govdata.codes import MOD36_ALPHABET, ecert_identifier
from tests.integrations.govdata.conftest import CLIENT_TIMEOUT, SimControl
from tests.integrations.govdata.support import first_cert, outsider_id, person_where

PURPOSE = "YW2026120100001 申办材料核验"
BIRTH, VACCINATION = "11100000000014303H001", "11100000000014303H002"
OFD_NS = {"ofd": "http://www.ofdspec.org/2016"}


def refusal(call) -> GovDataError:
    with pytest.raises(GovDataError) as err:
        call()
    assert err.value.retryable is False
    return err.value


def identifiers(certs) -> set[str]:
    return {c["identifier"] for c in certs}


@pytest.fixture(scope="module")
def parent(population):
    """A parent of a child aged 14 or under (so the child has birth and vaccination certificates)."""
    return person_where(population, lambda p: any(c.age <= 14 for c in p.children))


# --- list ---------------------------------------------------------------------------------------


def test_list_returns_the_persons_certificates(ecert, population, registry):
    person = population.get("440106198512124413")  # 李四, a demo person
    listed = ecert.list(id_number=person.id_number, name=person.name, purpose=PURPOSE)
    assert identifiers(listed) == {c.identifier for c in registry.of(person.id_number)}
    own = [c for c in listed if c["holder_id_number"] == person.id_number]
    assert {c["type_name"] for c in own} >= {"居民身份证", "居民户口簿"}
    for c in own:
        assert c["holder_name"] == person.name
        assert c["state_name"] == STATES[c["state"]]
        assert c["type_name"] == TYPES[c["type_code"]][0] and c["issuer"] == TYPES[c["type_code"]][1]
    id_card = next(c for c in own if c["type_code"] == "11100000000019713D001")
    assert id_card["number"] == person.id_number


def test_list_includes_minor_childrens_birth_and_vaccination_certificates(ecert, population, parent):
    listed = ecert.list(id_number=parent.id_number, name=parent.name, purpose=PURPOSE)
    for child in parent.children:
        theirs = {c["type_code"] for c in listed if c["holder_id_number"] == child.id_number}
        if child.age <= 14:
            assert theirs == {BIRTH, VACCINATION}
        elif child.age < 18:
            assert theirs == {BIRTH}
        else:
            assert theirs == set()  # an adult child's certificates are their own business


def test_a_parent_does_not_see_an_adult_childs_certificates(ecert, population):
    parent = person_where(population, lambda p: any(c.age >= 18 for c in p.children))
    listed = ecert.list(id_number=parent.id_number, name=parent.name, purpose=PURPOSE)
    adults = {c.id_number for c in parent.children if c.age >= 18}
    assert not [c for c in listed if c["holder_id_number"] in adults]


def test_list_with_a_wrong_name_is_refused(ecert, population):
    person = population.get("440106198512124413")
    err = refusal(lambda: ecert.list(id_number=person.id_number, name="李五", purpose=PURPOSE))
    assert (err.status, err.code) == (403, "E4034")


def test_list_without_the_holders_name_is_refused(ecert, population):
    person = population.get("440106198512124413")
    err = refusal(lambda: ecert.list(id_number=person.id_number, name="", purpose=PURPOSE))
    assert (err.status, err.code) == (400, "E4001")


def test_list_of_somebody_unknown_is_empty(ecert, population):
    assert ecert.list(id_number=outsider_id(population), name="路人甲", purpose=PURPOSE) == []


# --- detail -------------------------------------------------------------------------------------


@pytest.mark.parametrize("type_code", list(TYPES))
def test_detail_of_every_certificate_type(ecert, registry, type_code):
    cert = first_cert(registry, lambda c: c.type_code == type_code)
    detail = ecert.detail(identifier=cert.identifier, id_number=cert.holder_id, purpose=PURPOSE)
    assert detail["identifier"] == cert.identifier and detail["type_code"] == type_code
    assert detail["type_name"] == TYPES[type_code][0]
    assert detail["state"] == cert.state and detail["state_name"] == STATES[cert.state]
    assert detail["holder_name"] == cert.holder_name and detail["number"] == cert.number
    assert detail["issued_on"] == cert.issued_on.isoformat()
    assert detail["valid_until"] == (cert.valid_until.isoformat() if cert.valid_until else None)
    assert detail["data"] == cert.data


@pytest.mark.parametrize("state", ["02", "03", "04", "05", "07"])
def test_detail_reports_a_non_valid_state(ecert, registry, state):
    cert = first_cert(registry, lambda c: c.state == state)
    detail = ecert.detail(identifier=cert.identifier, id_number=cert.holder_id, purpose=PURPOSE)
    assert (detail["state"], detail["state_name"]) == (state, STATES[state])


def test_a_guardian_sees_the_childs_birth_certificate(ecert, population, parent):
    child = next(c for c in parent.children if c.age <= 14)
    listed = ecert.list(id_number=parent.id_number, name=parent.name, purpose=PURPOSE)
    birth = next(c for c in listed if c["holder_id_number"] == child.id_number and c["type_code"] == BIRTH)
    detail = ecert.detail(identifier=birth["identifier"], id_number=parent.id_number, purpose=PURPOSE)
    assert detail["holder_name"] == child.name
    assert detail["data"]["mother"] == next(p.name for p in child.parents if p.gender == "女")


def test_detail_of_another_persons_certificate_is_refused(ecert, registry, population):
    cert = first_cert(registry, lambda c: c.type_code == "11100000000019713D001")
    stranger = next(p for p in population.people.values() if p.id_number != cert.holder_id)
    err = refusal(
        lambda: ecert.detail(identifier=cert.identifier, id_number=stranger.id_number, purpose=PURPOSE)
    )
    assert (err.status, err.code) == (403, "E4034")
    err = refusal(lambda: ecert.file(identifier=cert.identifier, id_number=stranger.id_number))
    assert (err.status, err.code) == (403, "E4034")


def test_a_parent_cannot_read_their_teenagers_id_card(ecert, registry, population):
    cert = first_cert(
        registry,
        lambda c: c.type_code == "11100000000019713D001" and population.get(c.holder_id).parents != [],
    )
    parent = population.get(cert.holder_id).parents[0]
    err = refusal(
        lambda: ecert.detail(identifier=cert.identifier, id_number=parent.id_number, purpose=PURPOSE)
    )
    assert err.code == "E4034"


def test_an_identifier_with_a_wrong_check_char_is_refused(ecert, registry):
    cert = first_cert(registry, lambda c: c.type_code == "11100000000019713D001")
    wrong = cert.identifier[:-1] + MOD36_ALPHABET[(MOD36_ALPHABET.index(cert.identifier[-1]) + 1) % 36]
    err = refusal(lambda: ecert.detail(identifier=wrong, id_number=cert.holder_id, purpose=PURPOSE))
    assert (err.status, err.code) == (400, "E4002")


@pytest.mark.parametrize("identifier", ["", "not-an-identifier", "1.2.156.3005.2.X"])
def test_a_malformed_identifier_is_refused(ecert, identifier):
    err = refusal(
        lambda: ecert.detail(identifier=identifier, id_number="110101199003078515", purpose=PURPOSE)
    )
    assert (err.status, err.code) == (400, "E4002")


def test_an_unknown_wellformed_identifier_is_not_found(ecert, registry):
    cert = first_cert(registry, lambda c: c.type_code == "11100000000019713D001")
    unknown = ecert_identifier(cert.type_code, "11440100007502318X", "999999999999999")
    assert unknown not in registry.by_id
    err = refusal(lambda: ecert.detail(identifier=unknown, id_number=cert.holder_id, purpose=PURPOSE))
    assert (err.status, err.code) == (404, "E404")


# --- files --------------------------------------------------------------------------------------


def test_pdf_file_is_a_wellformed_pdf_of_the_certificate(ecert, registry):
    cert = first_cert(registry, lambda c: c.type_code == "11100000000019713D003")
    f = ecert.file(identifier=cert.identifier, id_number=cert.holder_id, fmt="pdf")
    assert f.media_type == "application/pdf"
    assert f.sha256 == hashlib.sha256(f.content).hexdigest()
    pdf = f.content
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    startxref = int(re.search(rb"startxref\s+(\d+)\s+%%EOF\s*$", pdf).group(1))
    assert pdf[startxref:].startswith(b"xref")
    table = pdf[startxref:].split(b"trailer")[0].split(b"\n")
    first, count = (int(x) for x in table[1].split())
    entries = table[2 : 2 + count]
    assert first == 0 and entries[0].startswith(b"0000000000 65535 f")
    for number, entry in enumerate(entries[1:], start=1):
        offset, _, kind = entry.split()[:3]
        assert kind == b"n"
        assert pdf[int(offset) :].startswith(b"%d 0 obj" % number), number
    size = int(re.search(rb"/Size (\d+)", pdf).group(1))
    assert size == count
    assert cert.identifier.encode() in pdf and cert.number.encode() in pdf


def test_ofd_file_is_a_package_whose_docid_is_the_identifier(ecert, registry):
    cert = first_cert(registry, lambda c: c.type_code == "11100000000014286D001")
    f = ecert.file(identifier=cert.identifier, id_number=cert.holder_id, fmt="ofd")
    assert f.media_type == "application/ofd"
    assert f.sha256 == hashlib.sha256(f.content).hexdigest()
    with zipfile.ZipFile(io.BytesIO(f.content)) as zf:
        assert zf.testzip() is None
        ofd = ET.fromstring(zf.read("OFD.xml"))
        assert ofd.find("ofd:DocBody/ofd:DocInfo/ofd:DocID", OFD_NS).text == cert.identifier
        assert ofd.find("ofd:DocBody/ofd:DocInfo/ofd:Title", OFD_NS).text == "结婚证"
        root = ofd.find("ofd:DocBody/ofd:DocRoot", OFD_NS).text
        document = ET.fromstring(zf.read(root))
        page = document.find("ofd:Pages/ofd:Page", OFD_NS).get("BaseLoc")
        content = ET.fromstring(zf.read(f"{root.rsplit('/', 1)[0]}/{page}"))
    texts = [t.text for t in content.iter("{http://www.ofdspec.org/2016}TextCode")]
    assert f"持证人：{cert.holder_name}" in texts and f"证照编号：{cert.number}" in texts


def test_file_in_an_unknown_format_is_refused(ecert, registry):
    cert = first_cert(registry, lambda c: c.type_code == "11100000000019713D001")
    err = refusal(lambda: ecert.file(identifier=cert.identifier, id_number=cert.holder_id, fmt="docx"))
    assert (err.status, err.code) == (400, "E4001")


def test_a_file_whose_digest_does_not_match_is_rejected(scripted):
    content = b"%PDF-1.7\n% tampered\n%%EOF\n"
    scripted.reply = lambda path, body: scripted.signed(
        200,
        {
            "code": "0",
            "media_type": "application/pdf",
            "content": base64.b64encode(content).decode(),
            "sha256": hashlib.sha256(b"the original").hexdigest(),
        },
    )
    client = EcertClient(scripted.url, protocol.credentials({}), timeout=CLIENT_TIMEOUT)
    with pytest.raises(GovDataError) as err:
        client.file(identifier="1.2.156.3005.2.X", id_number="110101199003078515")
    assert "digest" in str(err.value) and err.value.retryable is True


# --- control API: states ------------------------------------------------------------------------


def test_changing_a_state_shows_in_detail_and_list_until_reset(ecert, ecert_ctl, registry, population):
    cert = first_cert(registry, lambda c: c.type_code == "11100000000019713D003" and c.state == "01")
    holder = population.get(cert.holder_id)
    resp = ecert_ctl.post(f"certificates/{cert.identifier}/state", {"state": "03"})
    assert resp.status_code == 200 and resp.json()["state"] == "03"

    detail = ecert.detail(identifier=cert.identifier, id_number=cert.holder_id, purpose=PURPOSE)
    assert (detail["state"], detail["state_name"]) == ("03", "撤销")
    listed = ecert.list(id_number=holder.id_number, name=holder.name, purpose=PURPOSE)
    assert next(c for c in listed if c["identifier"] == cert.identifier)["state"] == "03"
    pdf = ecert.file(identifier=cert.identifier, id_number=cert.holder_id).content
    assert b"State: 03" in pdf

    ecert_ctl.reset()
    detail = ecert.detail(identifier=cert.identifier, id_number=cert.holder_id, purpose=PURPOSE)
    assert (detail["state"], detail["state_name"]) == ("01", "有效")


def test_state_control_refuses_unknown_states_and_certificates(ecert_ctl, registry):
    cert = first_cert(registry, lambda c: c.state == "01")
    assert ecert_ctl.post(f"certificates/{cert.identifier}/state", {"state": "09"}).status_code == 400
    unknown = ecert_identifier(cert.type_code, "11440100007502318X", "999999999999999")
    assert ecert_ctl.post(f"certificates/{unknown}/state", {"state": "03"}).status_code == 404


def test_control_api_lists_a_persons_certificates(ecert_server, registry, parent):
    listed = SimControl(ecert_server.url).get(f"people/{parent.id_number}/certificates")["certificates"]
    assert identifiers(listed) == {c.identifier for c in registry.of(parent.id_number)}


# --- signatures ---------------------------------------------------------------------------------


def test_a_request_signed_with_a_wrong_secret_is_refused(ecert_server, population):
    wrong = EcertClient(
        ecert_server.url,
        protocol.credentials({"GOVDATA_SECRET": "wrong-secret-000000000000000000"}),
        timeout=CLIENT_TIMEOUT,
    )
    person = population.get("440106198512124413")
    with pytest.raises(GovDataError) as err:
        wrong.list(id_number=person.id_number, name=person.name, purpose=PURPOSE)
    assert err.value.status == 401 and err.value.code is None  # its refusal is not verifiable either


# --- counts -------------------------------------------------------------------------------------


def exercise(ecert, ecert_server, registry, population):
    """Two lists (one refused), a detail, two files, a refused detail and a request with a bad signature."""
    cert = first_cert(registry, lambda c: c.type_code == "11100000000019713D002")
    holder = population.get(cert.holder_id)
    ecert.list(id_number=holder.id_number, name=holder.name, purpose=PURPOSE)
    refusal(lambda: ecert.list(id_number=holder.id_number, name=holder.name + "x", purpose=PURPOSE))
    ecert.detail(identifier=cert.identifier, id_number=cert.holder_id, purpose=PURPOSE)
    ecert.file(identifier=cert.identifier, id_number=cert.holder_id, fmt="pdf")
    ecert.file(identifier=cert.identifier, id_number=cert.holder_id, fmt="ofd")
    refusal(
        lambda: ecert.detail(identifier=cert.identifier, id_number=outsider_id(population), purpose=PURPOSE)
    )
    wrong = EcertClient(ecert_server.url, protocol.credentials({"GOVDATA_SECRET": "wrong-" + "0" * 24}))
    with pytest.raises(GovDataError):
        wrong.list(id_number=holder.id_number, name=holder.name, purpose=PURPOSE)


def test_stats_count_calls_refusals_and_auth_failures(ecert, ecert_ctl, ecert_server, registry, population):
    assert ecert_ctl.stats() == {"lists": 0, "details": 0, "files": 0, "refused": {}, "auth_failures": {}}
    exercise(ecert, ecert_server, registry, population)
    assert ecert_ctl.stats() == {
        "lists": 1,
        "details": 1,
        "files": 2,
        "refused": {"E4034": 2},
        "auth_failures": {"bad_signature": 1},
    }
    ecert_ctl.reset()
    assert ecert_ctl.stats() == {"lists": 0, "details": 0, "files": 0, "refused": {}, "auth_failures": {}}
