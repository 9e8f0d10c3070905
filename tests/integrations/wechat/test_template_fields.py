import pytest

from integrations.wechat.template_fields import field_type, invalid_fields, value_ok


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        ("thing", ["居住证办理", "a" * 20], ["a" * 21, ""]),
        ("number", ["42", "3.14", "1" * 32], ["1" * 33, "12a", "-1"]),
        ("letter", ["abc", "A" * 32], ["A" * 33, "ab1"]),
        ("symbol", ["%", "*-+"], ["%%%%%%", "a"]),
        ("character_string", ["SQ20240501-0001", "x" * 32], ["x" * 33, "申办"]),
        ("time", ["15:01", "2019年10月1日 15:01", "15:01~18:30", "2024-05-01 09:30"], ["25:00", "下午三点"]),
        (
            "date",
            ["2019年10月1日", "2019-10-01 15:01", "2024年5月1日~2024年5月3日"],
            ["2019年13月1日", "明天"],
        ),
        ("amount", ["¥100.01", "100元", "9999999999"], ["12345678901", "一百元"]),
        ("phone_number", ["+86-13800138000", "021-12345678"], ["1" * 18, "abc"]),
        ("car_number", ["粤A8Z888挂", "京A12345"], ["粤A8Z888挂X", "粤-A888"]),
        (
            "name",
            ["张三", "欧阳娜娜娜娜娜娜娜娜", "John Smith"],
            ["欧阳娜娜娜娜娜娜娜娜娜", "张三 Smith", "x" * 21],
        ),
        ("phrase", ["已受理", "审核通过了"], ["审核已经通过", "ok"]),
    ],
)
def test_field_limits(kind, good, bad):
    assert all(value_ok(kind, v) for v in good), [v for v in good if not value_ok(kind, v)]
    assert not any(value_ok(kind, v) for v in bad), [v for v in bad if value_ok(kind, v)]


def test_enum_accepts_only_predefined_values():
    assert value_ok("enum", "男", choices=["男", "女"])
    assert not value_ok("enum", "其他", choices=["男", "女"])


def test_field_type_and_data_checks():
    assert field_type("character_string12") == "character_string"
    spec = {"thing1": {"type": "thing"}, "phrase2": {"type": "phrase"}}
    assert invalid_fields(spec, {"thing1": {"value": "ok"}, "phrase2": {"value": "已办结"}}) == []
    assert invalid_fields(spec, {"thing1": {"value": "ok"}}) == ["phrase2"]
    assert invalid_fields(spec, {"thing1": {"value": "ok"}, "phrase2": {"value": "已办结"}, "x3": {}}) == [
        "x3"
    ]
    assert invalid_fields(spec, {"thing1": "ok", "phrase2": {"value": "已办结"}}) == ["thing1"]
    assert invalid_fields(spec, "not a dict") == ["data"]
