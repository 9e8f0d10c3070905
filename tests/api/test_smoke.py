def test_health(client):
    r = client.get("/v1/health")
    assert r.status_code == 200 and r.get_json() == {"status": "ok"}


def test_me_with_token(client, citizen):
    r = client.get("/v1/me", headers=citizen["headers"])
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["id"] == citizen["account_id"]
    assert body["phone"].count("*") == 4
