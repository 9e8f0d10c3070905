"""Log redaction masks phones and ID numbers in free text, and leaves ids that merely contain digits."""

from __future__ import annotations

from core.masking import redact_text, redact_values


def test_phones_and_id_numbers_in_text_are_masked():
    line = "用户13812345678提交了身份证110105194912310029的申请, tel:13912345678."
    out = redact_text(line)
    assert "13812345678" not in out and "138****5678" in out
    assert "139****5678" in out
    assert "110105194912310029" not in out and "110***********0029" in out


def test_phones_with_the_country_code_or_in_groups_are_masked():
    for written in ("+8613812345678", "008613812345678", "8613812345678", "+86 138 1234 5678",
                    "138-1234-5678", "138 1234 5678", "+86-13812345678"):  # fmt: skip
        out = redact_text(f"sms to {written}.")
        assert out == "sms to 138****5678.", written


def test_uuids_in_paths_are_left_alone():
    path = "/v1/applications/5f1c2d3e-4b5a-4c6d-9e8f-19712345678b/timeline"
    assert redact_text(path) == path
    assert redact_text("id=a13812345678") == "id=a13812345678"


def test_known_values_quoted_in_free_text_are_masked_like_names():
    text = "申请人张三（张三丰之子）住广州市天河区，男，电话 13800138000"
    redacted = redact_values(text, ["张三", "张三丰", "广州市天河区", "男"])
    # A longer value is masked whole before a shorter one inside it, one character is too
    # short to mask, and the patterns still apply.
    assert redacted == "申请人张*（张*丰之子）住广****区，男，电话 138****8000"
    assert redact_values("没有引用", ["张三"]) == "没有引用"


def test_a_part_of_a_long_value_quoted_on_its_own_is_masked_too():
    address = "广州市天河区体育西路101号"
    text = "地址“天河区体育西路101号”与户籍不符，另“体育西路”不在辖区，字段 dz 不通过"
    redacted = redact_values(text, [address])
    assert "天河区体育西路" not in redacted and "体育西路" not in redacted
    assert "“天*********号”" in redacted and "“体**路”" in redacted
    # Short runs, and runs with fewer than two Chinese characters, stay readable: codes and
    # field names are what an operator needs.
    assert redact_values("天河两字与 101号 均可读，字段 dz", [address]) == "天河两字与 101号 均可读，字段 dz"
    # Short values are matched whole only.
    assert redact_values("广州天河", ["广州天河区"]) == "广州天河"


def test_a_value_holding_asterisks_is_masked_once_and_the_masking_ends():
    # A run of such a value may read the same once masked ("张**三"): it is left as it reads.
    assert redact_values("张**三 与 张**三甲", ["张**三甲乙"]) == "张**三 与 张***甲"
