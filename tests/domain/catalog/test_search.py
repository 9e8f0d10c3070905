"""Chinese search over the seed catalog: citizens' words find the right items, on any database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from cli.catalog import SEED_DIR, SEED_FILES, merged_documents
from domain.catalog.importing import import_catalog
from domain.catalog.read_model import CatalogReadModel
from domain.catalog.search import Doc, SearchIndex
from domain.operators.audit_log import CLI_ACTOR
from tests.conftest import migrate

QUERIES = json.loads((SEED_DIR / "queries.json").read_text(encoding="utf-8"))


def _seed_document() -> dict:
    doc = merged_documents([SEED_DIR / f for f in SEED_FILES])
    doc["publish"] = True
    return doc


@pytest.fixture
def seeded(app, db_session):
    report = import_catalog(db_session, CLI_ACTOR, _seed_document(), dry_run=False)
    assert report.ok, report.problems[:5]
    return app.extensions["yiwang"].catalog


def _top(model: CatalogReadModel, q: str, n: int = 3) -> list[str]:
    _, found = model.find(q=q, category=None, department=None, region=None, at_most_one_visit=False,
                          fully_online=False)  # fmt: skip
    return [entry["code"] for entry, _ in found[:n]]


def test_the_seed_catalog_is_large_and_broad_enough():
    doc = _seed_document()
    assert len(doc["items"]) >= 30 and len(doc["bundles"]) >= 2
    departments = {i["department"] for i in doc["items"]}
    assert {"public_security", "civil_affairs", "human_resources", "housing_fund", "market_regulation",
            "health", "education"} <= departments  # fmt: skip
    assert len(QUERIES) >= 20


def test_a_citizens_words_find_the_expected_item_in_the_top_three(seeded):
    # One test over every pair (importing the seed per pair would cost a second each); the
    # failure message lists every query that missed, with what it found instead.
    names = {e["code"]: e["name"] for e in seeded.snapshot().entries}
    misses = []
    for case in QUERIES:
        top = _top(seeded, case["q"])
        if case["expect"] not in top:
            misses.append((case["q"], names.get(case["expect"]), [names[c] for c in top]))
    assert misses == []


def test_spaces_typed_or_spoken_between_the_characters_change_nothing(seeded):
    """Elderly citizens type (or voice input writes) "生 娃", "开\u3000店": the same items."""
    names = {e["code"]: e["name"] for e in seeded.snapshot().entries}
    misses = []
    for case in QUERIES:
        if len(case["q"]) < 2 or not all("\u4e00" <= ch <= "\u9fff" for ch in case["q"]):
            continue
        for spaced in (" ".join(case["q"]), "\u3000".join(case["q"])):
            top = _top(seeded, spaced)
            if case["expect"] not in top:
                misses.append((spaced, names.get(case["expect"]), [names[c] for c in top]))
    assert misses == []


@pytest.mark.parametrize(
    ("traditional", "simplified"),
    [("護照", "护照"), ("醫保", "医保"), ("戶口", "户口"), ("離婚", "离婚"), ("營業執照", "营业执照"),
     ("公積金", "公积金"), ("結婚登記", "结婚登记")],
)  # fmt: skip
def test_traditional_characters_find_what_simplified_ones_do(seeded, traditional, simplified):
    """A phone set to traditional input, a resident from Hong Kong or Taiwan."""
    found = _top(seeded, simplified, 5)
    assert found and _top(seeded, traditional, 5) == found


def test_ranking_puts_the_closest_item_first(seeded):
    names = {e["code"]: e["name"] for e in seeded.snapshot().entries}
    assert names[_top(seeded, "居民身份证换领", 1)[0]] == "居民身份证换领"
    assert "公积金" in names[_top(seeded, "公积金提取", 1)[0]]
    assert "个体工商户" in names[_top(seeded, "开店", 1)[0]]


def test_one_character_finds_every_item_whose_name_holds_it_first(seeded):
    """Citizens (many elderly) type one character: 婚 or 证 lists every item named with it,
    before items that only mention it in their keywords (孩 finds 生育登记 by 生孩子)."""
    names = {e["code"]: e["name"] for e in seeded.snapshot().entries}
    for char in ("婚", "证", "房"):
        _, found = seeded.find(q=char, category=None, department=None, region=None,
                               at_most_one_visit=False, fully_online=False)  # fmt: skip
        codes = [entry["code"] for entry, _ in found]
        named = {code for code, name in names.items() if char in name}
        assert named and set(codes[: len(named)]) == named, (char, [names[c] for c in codes])
    assert "内地居民离婚登记" in [names[c] for c in _top(seeded, "婚", n=10)]
    assert "生育登记" in [names[c] for c in _top(seeded, "孩", n=20)]


def test_a_longer_query_is_not_answered_by_one_shared_character(seeded):
    """驾驶证 is not in the catalog: sharing 证 with 居住证 does not make a match."""
    assert _top(seeded, "驾驶证", n=20) == []
    assert _top(seeded, "驾驶证 ", n=20) == []
    names = {e["code"]: e["name"] for e in seeded.snapshot().entries}
    # Two characters the vocabulary does not join still find the name that holds both.
    assert [names[c] for c in _top(seeded, "婚证", n=20)] == ["补领婚姻登记证"]
    # A word of the query that is not in any name still finds the item by its pair of characters.
    assert names[_top(seeded, "居住正", n=1)[0]] == "居住证申领"


def test_the_required_queries_are_covered():
    asked = {c["q"] for c in QUERIES}
    assert {"身份证", "生孩子", "公积金提取", "开店", "结婚"} <= asked


def test_results_are_the_same_on_postgresql_and_sqlite(seeded, tmp_path):
    """The index is built in memory from the published catalog, so the backend cannot change a
    ranking; this loads the seed into a separate SQLite database and compares every query."""
    url = f"sqlite:///{tmp_path / 'other.db'}"
    migrate(url)
    engine = create_engine(url)
    factory = sessionmaker(engine)
    session = factory()
    try:
        assert import_catalog(session, CLI_ACTOR, _seed_document(), dry_run=False).ok
        other = CatalogReadModel(lambda: session, refresh_seconds=0)
        for case in QUERIES + [{"q": "证明"}, {"q": "登记"}, {"q": "申请"}]:
            assert _top(other, case["q"], n=20) == _top(seeded, case["q"], n=20), case["q"]
    finally:
        session.close()
        engine.dispose()


def _fresh_process(code: str) -> str:
    """What `code` prints in a new interpreter at the project root (modules not yet imported)."""
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_loading_search_leaves_pkg_resources_unloaded_and_still_cuts_words() -> None:
    """jieba reads its files with open() when pkg_resources is hidden (5 MB per worker saved)."""
    code = (
        "import sys; import domain.catalog.search as s; "
        "assert 'pkg_resources' not in sys.modules, 'pkg_resources loaded'; "
        "print(' '.join(s._cut(s._writer_tokenizer(), '我要换领居民身份证')))"
    )
    out = _fresh_process(code)
    assert "居民身份证" in out.split() and "换领" in out.split()


def test_jiebas_hmm_tables_load_only_when_something_cuts_with_them() -> None:
    """Search cuts with HMM=False: the HMM's tables (3 MB per worker) stay unloaded until used."""
    code = (
        "import sys; import domain.catalog.search as s; "
        "t = s._writer_tokenizer(); "
        "print(' '.join(s._cut(t, '我要换领居民身份证'))); "
        "assert 'jieba.finalseg.prob_emit' not in sys.modules, 'HMM tables loaded'; "
        "print('|'.join(t.cut('他来到了网易杭研大厦', HMM=True))); "
        "assert 'jieba.finalseg.prob_emit' in sys.modules"
    )
    plain, with_hmm = _fresh_process(code).splitlines()
    assert "居民身份证" in plain.split() and "换领" in plain.split()
    # The HMM still works when asked for: it joins characters no dictionary word covers.
    assert "杭研" in with_hmm.split("|"), with_hmm


def test_one_character_keeps_keyword_matches_in_a_large_catalog():
    """In a large catalog a character that is also a word of one name scores that item high; the
    items holding it only in their keywords (离婚 for 婚) must still be found."""
    docs = [
        Doc("NAME", "婚姻登记", {"name": ["婚", "姻", "登记"]}, {}),
        Doc("KEYWORD", "户口迁移", {"name": ["户口", "迁移"], "keywords": ["离婚"]}, {}),
    ] + [Doc(f"X{i}", f"其他事项{i}", {"name": ["其他", "事项"]}, {}) for i in range(400)]
    assert [key for key, _ in SearchIndex(docs).search("婚")] == ["NAME", "KEYWORD"]
