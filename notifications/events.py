"""The events a citizen is told about, and the words each one uses (Chinese first, English too).

`render` fills an event's texts from its parameters; a missing parameter renders empty rather
than failing, so a sparse event still reaches the inbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from domain.catalog.sources import SHARED_DATASETS
from domain.shared_data.models import STATUS_LABELS

# Channel names a citizen can switch per event (the inbox is always on).
PREF_CHANNELS = ("wechat", "push", "sms")
PUSH_PROVIDERS = ("apns", "jpush", "huawei")


@dataclass(frozen=True)
class Event:
    label_zh: str
    label_en: str
    phrase: str  # ≤ 5 CJK characters: the status word of WeChat templates and SMS
    title_zh: str
    title_en: str
    body_zh: str
    body_en: str
    note_zh: str = ""  # the short remark of WeChat templates ("thing", ≤ 20 characters)
    # The built-in SMS template's status variable (≤ 35 characters): the phrase, and the note when
    # the citizen must act by a date the phrase alone would not tell.
    sms_status: str = "{phrase}"


EVENTS: dict[str, Event] = {
    "case_received": Event(
        "办件已送达", "Case received", "已接收",
        "申请已送达办理部门", "Application received",
        "您申请的「{service_name}」已由省政务服务平台接收，受理编号 {case_number}。",
        "Your application for {service_name} was received by the provincial platform (case {case_number}).",
        "已送达，等待受理",
    ),
    "case_accepted": Event(
        "办件已受理", "Case accepted", "已受理",
        "申请已受理", "Application accepted",
        "您申请的「{service_name}」（受理编号 {case_number}）已受理，正在办理中。",
        "Your application for {service_name} (case {case_number}) was accepted and is being handled.",
        "已受理，正在办理",
    ),
    "supplement_requested": Event(
        "需要补齐补正", "Supplement requested", "需补正",
        "请补正申请", "Please complete your application",
        "您申请的「{service_name}」（受理编号 {case_number}）需要补齐补正：{materials}。{reason}",
        "Your application for {service_name} (case {case_number}) needs more: {materials}. {reason}",
        "请补充：{materials}",
    ),
    "case_refused": Event(
        "不予受理", "Not accepted", "不予受理",
        "申请未被受理", "Application not accepted",
        "很抱歉，您申请的「{service_name}」（受理编号 {case_number}）不予受理。原因：{reason}",
        "Your application for {service_name} (case {case_number}) was not accepted. Reason: {reason}",
        "原因：{reason}",
    ),
    "case_completed": Event(
        "办件已办结", "Case completed", "已办结",
        "办件已办结", "Case completed",
        "您申请的「{service_name}」（受理编号 {case_number}）已办结，结果：{result_label}。{how_to_get}",
        "Your application for {service_name} (case {case_number}) is complete: {result_label}. {how_to_get}",
        "{result_label}，{how_to_get}",
    ),
    "result_delivered": Event(
        "结果已送达", "Result delivered", "已送达",
        "办理结果已送达", "Result delivered",
        "「{service_name}」（受理编号 {case_number}）的办理结果已送达。",
        "The result of {service_name} (case {case_number}) has been delivered.",
        "办理结果已送达",
    ),
    "case_delayed": Event(
        "办件传送延迟", "Case delayed", "传送延迟",
        "申请暂未送达", "Application delayed",
        "您申请的「{service_name}」（受理编号 {case_number}）暂未送达省政务服务平台，"
        "工作人员正在处理，无需重新提交。",
        "Your application for {service_name} (case {case_number}) has not reached the provincial platform"
        " yet; staff are handling it, no need to submit again.",
        "工作人员正在处理，无需重新提交",
    ),
    "due_soon": Event(
        "即将到期", "Due soon", "即将到期",
        "办件即将到期", "Case due soon",
        "「{service_name}」（受理编号 {case_number}）将于 {due_date} 到期。",
        "{service_name} (case {case_number}) is due on {due_date}.",
        "将于{due_date}到期",
    ),
    "overdue": Event(
        "已超期", "Overdue", "已超期",
        "办件已超期", "Case overdue",
        "「{service_name}」（受理编号 {case_number}）已超过承诺办结时限，我们已督促办理部门。",
        "{service_name} (case {case_number}) is past its promised time; the department has been reminded.",
        "已督促办理部门",
    ),
    "appointment_reminder": Event(
        "预约提醒", "Appointment reminder", "预约提醒",
        "预约办事提醒", "Appointment reminder",
        "您预约的「{service_name}」将于 {time} 在{hall}办理，请携带身份证件准时到达。",
        "Your appointment for {service_name} is at {time} at {hall}. Please bring your ID.",
        "{time} {hall}",
    ),
    "appointment_closed": Event(
        "预约当日暂停办公", "Hall closed that day", "暂停办公",
        "预约办事当日大厅暂停办公", "The hall is closed on your appointment day",
        "您预约在 {time} 于{hall}办理的「{service_name}」，因大厅当日暂停办公无法接待，"
        "请在“我的预约”中改约其他时间。",
        "Your appointment for {service_name} at {time} at {hall} cannot take place: the hall is closed"
        " that day. Please choose another time under My appointments.",
        "当日暂停办公，请改约",
    ),
    "evaluation_invite": Event(
        "邀请评价", "Please rate", "待评价",
        "请为本次服务评价", "Rate this service",
        "您的「{service_name}」（受理编号 {case_number}）已办结，欢迎对本次服务进行评价。",
        "{service_name} (case {case_number}) is complete. Please rate the service.",
        "欢迎评价本次服务",
    ),
    "rectification_responded": Event(
        "评价已有整改回复", "Rectification answered", "已回复",
        "您的评价已有整改回复", "Your rating was answered",
        "您对「{service_name}」（受理编号 {case_number}）的评价已有整改回复，"
        "请查看后{decide_action}{decide_note}。{final_note}",
        "The department answered your rating of {service_name} (case {case_number}). Please read it,"
        " then {decide_action}{decide_note}.{final_note}",
        "请于{decide_by}前{decide_action}",
        sms_status="{phrase}，{note}",
    ),
    "rectification_decide_reminder": Event(
        "整改确认提醒", "Rectification: confirm soon", "整改待确认",
        "请确认整改结果", "Confirm the rectification soon",
        "您对「{service_name}」（受理编号 {case_number}）评价的整改结果，{decide_note}",
        "Your rating of {service_name} (case {case_number}) was answered: {decide_note}",
        "请于{decide_by}前{decide_action}",
        sms_status="{phrase}，{note}",
    ),
    "rectification_deemed_confirmed": Event(
        "整改已视为确认", "Rectification deemed accepted", "视为确认",
        "整改结果已视为确认", "Rectification deemed accepted",
        "您对「{service_name}」（受理编号 {case_number}）评价的整改回复，在确认期限（{decide_by}，含当日）"
        "内未确认或申诉，已按本省规定视为确认。如仍有异议，可提交投诉。",
        "You did not accept or appeal the answer to your rating of {service_name} (case {case_number})"
        " by {decide_by} (inclusive), so under this province's rules it counts as accepted. If you still"
        " disagree, you may file a complaint.",
        "逾期未确认，已视为确认",
    ),
    "complaint_replied": Event(
        "投诉咨询已答复", "Complaint answered", "已答复",
        "您的{service_name}已答复", "Your {service_name} was answered",
        "您的{service_name}（编号 {case_number}）已有答复，请在“我的投诉咨询”查看并评价{rate_note}。",
        "Your {service_name} ({case_number}) has been answered. Please read and rate the answer{rate_note}.",
        "{rate_short}",
        sms_status="{phrase}{rate_sms}",
    ),
    "complaint_rate_reminder": Event(
        "投诉咨询评价提醒", "Rate the answer soon", "待评价",
        "请评价您的{service_name}答复", "Please rate the answer to your {service_name}",
        "您的{service_name}（编号 {case_number}）已答复，请于 {rate_by}（含当日）前在“我的投诉咨询”评价；"
        "逾期未评价将自动办结。",
        "Your {service_name} ({case_number}) has been answered. Please rate the answer under My"
        " complaints by {rate_by} (inclusive); if it is not rated by then, it will be closed automatically.",
        "{rate_short}",
        sms_status="{phrase}{rate_sms}",
    ),
    "complaint_closed_unrated": Event(
        "投诉咨询逾期未评价办结", "Closed unrated", "已办结",
        "您的{service_name}已自动办结", "Your {service_name} was closed",
        "您的{service_name}（编号 {case_number}）因超过评价期限（{rate_by}，含当日）未评价，已自动办结。",
        "Your {service_name} ({case_number}) was not rated by {rate_by} (inclusive), so it has been"
        " closed automatically.",
        "逾期未评价，已自动办结",
        sms_status="{note}",
    ),
    "shared_data_ready": Event(
        "共享数据已获取", "Shared data ready", "已获取",
        "{dataset_name}已获取", "{dataset_name} received",
        "办理「{service_name}」所需的{dataset_name}已经部门审核同意并获取，已自动填入申请，请继续办理。",
        "The {dataset_name} for {service_name} was approved and filled into your application.",
        "已自动填入，请继续办理",
    ),
    "shared_data_unavailable": Event(
        "共享数据未获取", "Shared data not available", "未获取",
        "{dataset_name}未能获取", "{dataset_name} not available",
        "办理「{service_name}」所需的{dataset_name}{status_label}，请自行填写或上传相关材料。",
        "The {dataset_name} for {service_name} was not shared ({status_label}); fill it in or upload it.",
        "请自行填写或上传材料",
    ),
    "app_message": Event(
        "应用消息", "App message", "新消息",
        "{client_name}：{title}", "{client_name}: {title}",
        "{body}（由第三方应用“{client_name}”经您授权发送）",
        "{body} (sent by {client_name} with your permission)",
        "{title}",
    ),
}  # fmt: skip

# Events that only ever reach the inbox: a third-party app may write to it with the citizen's
# grant (scope notifications.send), but never spend the citizen's SMS, WeChat or push attention.
INBOX_ONLY = frozenset({"app_message"})

RESULT_LABELS = {"approved": ("准予许可", "approved"), "denied": ("不予许可", "denied")}
# Codes some events pass where the text needs a word: each language gets its own.
COMPLAINT_KINDS = {"complaint": ("投诉", "complaint"), "consultation": ("咨询", "enquiry")}


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


def _name(material: Any, lang: str) -> str:
    if isinstance(material, Mapping):
        english = material.get("name_en") if lang == "en" else None
        return str(
            english or material.get("name") or material.get("material_name") or material.get("code") or ""
        )
    return str(material)


def _materials(value: Any, lang: str) -> str:
    if not isinstance(value, list):
        return str(value or "")
    names = [_name(m, lang) for m in value]
    return ("、" if lang == "zh" else ", ").join(n for n in names if n)


def values(event_type: str, params: Mapping[str, Any], lang: str = "zh") -> dict[str, str]:
    """The strings an event's texts are filled from."""
    out = _Blank(
        {k: "" if v is None else str(v) for k, v in params.items() if not isinstance(v, list | dict)}
    )
    # What a supplement asks for: the materials and the fields (by their form labels) together.
    fields = params.get("field_names")
    asked = [
        _materials(params.get("materials"), lang),
        _materials(fields if isinstance(fields, list) else [], lang),
    ]
    out["materials"] = ("、" if lang == "zh" else ", ").join(a for a in asked if a) or (
        "相关材料" if lang == "zh" else "materials"
    )
    result = params.get("result")
    label = RESULT_LABELS.get(str(result))
    out["result_label"] = (label[0] if lang == "zh" else label[1]) if label else str(result or "")
    if not out.get("how_to_get"):
        out["how_to_get"] = "可在“我的办件”查看结果" if lang == "zh" else "see My cases for the result"
    if event_type in _COMPLAINT_EVENTS:
        out["service_name"] = _word(COMPLAINT_KINDS, params.get("kind") or params.get("service_name"), lang)
        day = params.get("rate_by")  # notices stored before rating periods have no date
        zh = f"（请于 {day}（含当日）前评价，逾期未评价将自动办结）"
        en = f" by {day} (inclusive); if it is not rated by then, it will be closed automatically"
        out["rate_note"] = (zh if lang == "zh" else en) if day else ""
        # WeChat's remark (≤ 20 characters) and the SMS status (≤ 35) carry the date too.
        out["rate_short"] = f"请于{day}前评价" if day else "请查看答复并评价"
        out["rate_sms"] = f"，请于{day}前评价" if day else ""
    if event_type in _DECIDE_EVENTS:
        _decide_words(out, event_type, params, lang)
    if event_type in ("shared_data_ready", "shared_data_unavailable"):
        out["status_label"] = _word(STATUS_LABELS, params.get("status") or params.get("status_label"), lang)
        if params.get("dataset") in SHARED_DATASETS:
            out["dataset_name"] = _word(SHARED_DATASETS, params["dataset"], lang)
    if not out.get("reason"):
        out["reason"] = (
            "" if event_type != "case_refused" else ("详见办件详情" if lang == "zh" else "see the case")
        )
    return out


_COMPLAINT_EVENTS = ("complaint_replied", "complaint_rate_reminder", "complaint_closed_unrated")
_DECIDE_EVENTS = ("rectification_responded", "rectification_decide_reminder")
# After the last round's response (`final`) no appeal is left: the citizen is asked to confirm,
# and a complaint is named for what they still disagree with.
_ACTION = {False: ("确认或申诉", "accept it or appeal"), True: ("确认", "accept it")}
_FINAL_NOTE = ("如仍有异议，可提交投诉。", " If you still disagree, you may file a complaint.")


def _decide_words(out: dict[str, str], event_type: str, params: Mapping[str, Any], lang: str) -> None:
    """What the citizen is asked to do with a rectification response and by when: the last
    round's notices offer a complaint, not the appeal an earlier one would (refused 409 then)."""
    final = params.get("final") is True
    zh_action, en_action = _ACTION[final]
    day = out.get("decide_by")
    out["decide_action"] = zh_action if lang == "zh" else en_action
    out["final_note"] = (_FINAL_NOTE[0] if lang == "zh" else _FINAL_NOTE[1]) if final else ""
    if event_type == "rectification_responded":  # notices stored before deadlines have no date
        zh = f"（请于 {day}（含当日）前{zh_action}，逾期视为确认）"
        en = f" by {day} (inclusive); after that it counts as accepted"
        out["decide_note"] = (zh if lang == "zh" else en) if day else ""
        return
    if final:
        zh = f"确认将于 {day}（含当日）截止，逾期将视为确认。请查看整改回复后确认；{_FINAL_NOTE[0]}"
        en = (f"the time to accept it ends on {day} (inclusive); after that it counts as accepted."
              " Please read the answer and accept it; if you still disagree, you may file a"
              " complaint.")  # fmt: skip
    else:
        zh = f"确认将于 {day}（含当日）截止，逾期未确认或申诉将视为确认。请查看整改回复后确认或申诉。"
        en = (f"the time to accept or appeal it ends on {day} (inclusive); after that it counts as"
              " accepted. Please read the answer and accept or appeal it.")  # fmt: skip
    out["decide_note"] = zh if lang == "zh" else en


def _word(table: Mapping[str, tuple[str, str]], value: Any, lang: str) -> str:
    """The word for a code in `lang`; notices stored before codes were passed hold the Chinese
    word itself, which is looked up the same way."""
    for code, (zh, en) in table.items():
        if value in (code, zh):
            return zh if lang == "zh" else en
    return "" if value is None else str(value)


# The remark of a rectification notice stored before periods were kept (no `decide_by`).
_UNDATED_DECIDE_NOTE = "请查看整改回复并{decide_action}"


def note(event_type: str, params: Mapping[str, Any]) -> str:
    """The short Chinese remark for templates with little room."""
    filled = values(event_type, params)
    text = EVENTS[event_type].note_zh
    if event_type in _DECIDE_EVENTS and not filled.get("decide_by"):
        text = _UNDATED_DECIDE_NOTE  # not "请于前确认" with a hole where the day would be
    return text.format_map(filled).strip("，。 ")
