"""Templates per event × channel × language: the built-in wording, and operators' overrides.

Channels and their content:
- inbox  {title, body}: the inbox entry (and push, unless push has its own);
- push   {title, body}: shorter text for the lock screen;
- wechat {template_id, fields: {keyword: text}, page?}: a subscribe-message template;
- sms    {template_id, params: [text, ...]}: an approved SMS template's variables.
Texts may use {placeholders} from PLACEHOLDERS only. An override is checked against the
channel's limits when saved, by rendering it with sample values: a template that would be
refused by the provider (47003 on WeChat, a too-long variable on SMS) cannot be saved.
"""

from __future__ import annotations

import re
import string
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import clock
from core.errors import AppError, Text
from core.text import has_visible_text, shorten
from domain.operators import audit_log
from domain.operators.audit_log import Actor
from integrations.wechat.template_fields import FIELD_TYPES, field_type, value_ok
from notifications import wechat_data
from notifications.events import EVENTS, note, values
from notifications.models import NotificationTemplate

CHANNELS = ("inbox", "push", "wechat", "sms")
LANGS = ("zh", "en")
PLACEHOLDERS = frozenset({
    "service_name", "case_number", "reason", "materials", "result_label", "how_to_get", "due_date", "time",
    "hall", "receipt_no", "status_label", "phrase", "note", "date", "decide_by", "decide_note",
    "rate_by", "rate_note", "rate_short", "rate_sms", "decide_action", "dataset_name", "client_name", "body",
})  # fmt: skip
# WeChat's `page`: a page of the mini-program (no leading slash), optionally with a query.
PAGE_MAX = 128
_PAGE = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*(?:\?[A-Za-z0-9_.~%=&-]+)?")
LIMITS = {"title": 32, "body": 500, "push_body": 178, "sms_param": 35, "sms_params": 10}
# Long but real values: a template that fits these fits what cases send.
SAMPLE = {
    "service_name": "城乡居民基本养老保险参保登记及待遇领取资格认证",
    "case_number": "11440100007504956C30001",
    "reason": "申请材料中的户口簿首页复印件不清晰，无法辨认户主姓名，请重新上传清晰的彩色扫描件",
    "materials": [{"name": "户口簿首页"}, {"name": "居民身份证"}], "result": "approved",
    "due_date": "2026-12-31", "time": "2026-12-08 09:30", "hall": "天河区政务服务中心二楼综合窗口",
    "receipt_no": "SJ20261204000123", "status_label": "省平台已接收", "decide_by": "2026-12-31",
    "kind": "consultation", "rate_by": "2026-12-31",
}  # fmt: skip
_CACHE_SECONDS = 10.0
_cache: dict[tuple[str, str, str], tuple[float, dict | None]] = {}
_cache_lock = threading.Lock()


class BadTemplate(AppError):
    status = 422
    code = "notifications.bad_template"
    message_zh = "模板内容不符合该渠道的要求"
    message_en = "The template does not meet the channel's limits"


class TemplateNotFound(AppError):
    status = 404
    code = "notifications.template_not_found"
    message_zh = "没有该通知模板"
    message_en = "No such notification template"


def channel_langs(channel: str) -> tuple[str, ...]:
    """The languages a channel's templates exist in: WeChat and SMS templates are approved by
    the provider in Chinese, and those channels always send Chinese."""
    return ("zh",) if channel in ("wechat", "sms") else LANGS


def defaults(
    event_type: str, channel: str, lang: str, *, wechat_template: str, sms_template: str
) -> dict[str, Any]:
    """The built-in content of a template."""
    event = EVENTS[event_type]
    if channel in ("inbox", "push"):
        if lang == "en":
            return {"title": event.title_en, "body": event.body_en}
        return {"title": event.title_zh, "body": event.body_zh}
    if channel == "wechat":
        layout = wechat_data.LAYOUTS.get(wechat_template) or wechat_data.LAYOUTS["tpl_application_progress"]
        return {"template_id": wechat_template, "fields": {k: "{" + v + "}" for k, v in layout.items()}}
    return {"template_id": sms_template, "params": ["{service_name}", "{case_number}", event.sms_status]}


def override(session: Session, event_type: str, channel: str, lang: str) -> dict | None:
    """The operators' content for a template, if any (cached for a few seconds per process)."""
    key = (event_type, channel, lang)
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
        if hit and hit[0] > now:
            return hit[1]
    row = _row(session, event_type, channel, lang)
    content = dict(row.content) if row is not None else None
    with _cache_lock:
        _cache[key] = (now + _CACHE_SECONDS, content)
    return content


def forget_cache() -> None:
    with _cache_lock:
        _cache.clear()


def effective(session: Session, event_type: str, channel: str, lang: str, *, settings: Any) -> dict[str, Any]:
    found = override(session, event_type, channel, lang)
    if found is None and channel == "push":
        found = override(session, event_type, "inbox", lang)
    return found or defaults(event_type, channel, lang, wechat_template=settings.wechat_template,
                             sms_template=settings.sms_template)  # fmt: skip


def fill(
    event_type: str, params: Mapping[str, Any], lang: str = "zh", at: datetime | None = None
) -> dict[str, str]:
    """Every placeholder's value for an event."""
    filled = values(event_type, params, lang)
    filled["phrase"] = EVENTS[event_type].phrase
    filled["note"] = note(event_type, params) if lang == "zh" else ""
    # Citizens read Beijing time: {time} and {date} in UTC would say 02:00 for 10:00, and
    # yesterday's date until 08:00.
    moment = (at or clock.now()).astimezone(clock.BEIJING)
    filled.setdefault("time", moment.strftime("%Y-%m-%d %H:%M"))
    if not filled.get("time"):
        filled["time"] = moment.strftime("%Y-%m-%d %H:%M")
    filled["date"] = moment.strftime("%Y-%m-%d")
    return filled


def render_text(template: str, filled: Mapping[str, str]) -> str:
    return " ".join(template.format_map(_Blank(filled)).split())


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


def _rendered_within(text: str, filled: Mapping[str, str], limit: int | None) -> str:
    """`text` rendered; when too long and it shows the case number, the number loses its head.

    A case number is the 31-character item code, the date and the serial: the end is what
    tells one case from another, so a field that cannot hold it all keeps the end.
    """
    rendered = render_text(text, filled)
    over = len(rendered) - limit if limit else 0
    number = filled.get("case_number") or ""
    if over > 0 and "{case_number}" in text and len(number) > over:
        rendered = render_text(text, {**filled, "case_number": number[over:]})
    return rendered


def wechat_message(content: Mapping[str, Any], filled: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """The `data` of a subscribe message, each value fitted to its keyword's type."""
    data = {}
    for keyword, text in content["fields"].items():
        kind = field_type(keyword)
        value = _rendered_within(text, filled, wechat_data.LIMITS.get(kind))
        data[keyword] = {"value": wechat_data.fit(kind, value) or wechat_data.BLANKS.get(kind, "")}
    return data


def sms_params(content: Mapping[str, Any], filled: Mapping[str, str]) -> list[str]:
    """The SMS template's variables, each within the variable limit (longer text ends in "…")."""
    limit = LIMITS["sms_param"]
    params = []
    for text in content["params"]:
        value = " ".join(_rendered_within(text, filled, limit).split())
        params.append(shorten(value, limit) or "-")
    return params


# -- saving -------------------------------------------------------------------------------------


def _placeholders(text: Any, path: str, problems: dict[str, Any]) -> None:
    if not isinstance(text, str) or not has_visible_text(text):
        problems[path] = [Text("Must be non-empty text", "不能为空")]
        return
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError:
        problems[path] = [Text("Unbalanced braces", "花括号不成对")]
        return
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            problems[path] = [Text(f"Unknown placeholder {{{name}}}", f"不支持的占位符 {{{name}}}")]
            return


def _stripped(value: Any) -> Any:
    """A template id as the provider knows it: spaces around it are not part of it."""
    return value.strip() if isinstance(value, str) else value


def page_problem(page: Any) -> Text | None:
    """What is wrong with a WeChat `page`, if anything: it must be a mini-program page as
    NOTIFY_WECHAT_PAGE spells it, with an optional fixed query. Nothing in it is filled in; the
    application's id is added when sent (notifications/channels.py)."""
    if isinstance(page, str) and "{" in page and len(page) <= PAGE_MAX:
        return Text(
            "Placeholders are not filled in a page; the application's id is added when sent",
            "页面路径中不能使用占位符，发送时会自动加上申请的 id",
        )
    if not isinstance(page, str) or len(page) > PAGE_MAX or not _PAGE.fullmatch(page):
        return Text(
            f"A mini-program page path of at most {PAGE_MAX} characters, e.g. pages/applications/detail",
            f"应为不超过 {PAGE_MAX} 个字符的小程序页面路径，如 pages/applications/detail",
        )
    if "id" in parse_qs(page.partition("?")[2], keep_blank_values=True):
        return Text(
            "Leave out id: the application's id is added to the page when sent",
            "请勿填写 id：发送时会在页面路径后自动加上申请的 id",
        )
    return None


def validate(event_type: str, channel: str, lang: str, content: Any) -> dict[str, Any]:
    """The content cleaned, or BadTemplate with every problem and its path."""
    problems: dict[str, Any] = {}
    if event_type not in EVENTS:
        problems["event_type"] = [Text("Unknown event type", "没有这种通知类型")]
    if channel not in CHANNELS:
        problems["channel"] = [Text("Unknown channel", "没有这种渠道")]
    if lang not in LANGS:
        problems["lang"] = [Text("Language must be zh or en", "语言只能是 zh 或 en")]
    elif channel in CHANNELS and lang not in channel_langs(channel):
        problems["lang"] = [Text("This channel sends Chinese only", "该渠道只发送中文")]
    if not isinstance(content, Mapping):
        problems["content"] = [Text("Must be an object", "应为对象")]
    if problems:
        raise BadTemplate(fields=problems)
    sample = fill(event_type, SAMPLE, lang)
    if channel in ("inbox", "push"):
        clean = {"title": content.get("title"), "body": content.get("body")}
        for key in ("title", "body"):
            _placeholders(clean[key], f"content.{key}", problems)
        if not problems:
            title, body = render_text(clean["title"], sample), render_text(clean["body"], sample)
            body_limit = LIMITS["push_body"] if channel == "push" else LIMITS["body"]
            if len(title) > LIMITS["title"]:
                problems["content.title"] = [Text(f"At most {LIMITS['title']} characters as sent",
                                                  f"发送时不能超过 {LIMITS['title']} 个字")]  # fmt: skip
            if len(body) > body_limit:
                problems["content.body"] = [Text(f"At most {body_limit} characters as sent",
                                                 f"发送时不能超过 {body_limit} 个字")]  # fmt: skip
    elif channel == "wechat":
        clean = {"template_id": _stripped(content.get("template_id")), "fields": content.get("fields")}
        if content.get("page") is not None:
            clean["page"] = content.get("page")
            if (problem := page_problem(clean["page"])) is not None:
                problems["content.page"] = [problem]
        template_id = clean["template_id"]
        if not isinstance(template_id, str) or not has_visible_text(template_id) or len(template_id) > 64:
            problems["content.template_id"] = [Text("A WeChat template id is required", "请填写微信模板编号")]
        fields = clean["fields"]
        if not isinstance(fields, Mapping) or not fields or len(fields) > 20:
            problems["content.fields"] = [Text("1 to 20 keywords", "应有 1 到 20 个关键词")]
        else:
            for keyword, text in fields.items():
                path = f"content.fields.{keyword}"
                kind = field_type(str(keyword))
                if not re.fullmatch(r"[a-z_]+\d+", str(keyword)) or kind not in FIELD_TYPES or kind == "enum":
                    problems[path] = [Text("Not a keyword of a supported type", "不是可用类型的关键词")]
                    continue
                _placeholders(text, path, problems)
                # A literal must fit as written; text with placeholders is fitted when sent.
                shown = render_text(text, sample) if path not in problems else ""
                shown = wechat_data.fit(kind, shown) if "{" in str(text) else shown
                if path not in problems and not value_ok(kind, shown):
                    problems[path] = [
                        Text(f"Would not fit a {kind} field", f"内容不符合微信 {kind} 类型的要求")
                    ]
    else:
        clean = {"template_id": _stripped(content.get("template_id")), "params": content.get("params")}
        if not isinstance(clean["template_id"], str) or not re.fullmatch(
            r"[0-9]{1,16}", clean["template_id"]
        ):
            problems["content.template_id"] = [
                Text("An approved SMS template id (digits)", "请填写已审核的短信模板编号")
            ]
        params = clean["params"]
        if not isinstance(params, list) or not 1 <= len(params) <= LIMITS["sms_params"]:
            problems["content.params"] = [Text("1 to 10 variables", "应有 1 到 10 个变量")]
        else:
            for i, text in enumerate(params):
                path = f"content.params.{i}"
                _placeholders(text, path, problems)
                if (
                    path not in problems
                    and len(render_text(text, sample)) > LIMITS["sms_param"]
                    and "{" not in text
                ):
                    problems[path] = [Text("At most 35 characters", "不能超过 35 个字")]
    for key in content:  # a key this channel does not use would be dropped without a word
        if key not in clean and content[key] is not None:
            problems[f"content.{str(key)[:64]}"] = [Text("Not used by this channel", "该渠道没有此项内容")]
    if problems:
        # A text that is the built-in template's own is taken as it is: an operator who opens a
        # template and saves it unchanged (or changes only another part) is not refused for it.
        # The built-in texts are what is sent without an override, sample lengths or not (a long
        # English title is shortened on the phone, a long WeChat value fitted to its keyword).
        layout = str(clean.get("template_id") or "")
        built_in = _texts(defaults(event_type, channel, lang, wechat_template=layout, sms_template=""))
        mine = _texts(clean)
        for path in [p for p in problems if p in built_in and mine.get(p) == built_in[p]]:
            del problems[path]
    if problems:
        raise BadTemplate(fields=problems)
    return clean


def _texts(content: Mapping[str, Any]) -> dict[str, str]:
    """Each text of a template's content by the path its problems are reported at (not the
    provider's template id or the page: those are the deployment's, never built in)."""
    out = {f"content.{key}": content[key] for key in ("title", "body") if isinstance(content.get(key), str)}
    fields, params = content.get("fields"), content.get("params")
    if isinstance(fields, Mapping):
        out |= {f"content.fields.{k}": v for k, v in fields.items() if isinstance(v, str)}
    if isinstance(params, list):
        out |= {f"content.params.{i}": v for i, v in enumerate(params) if isinstance(v, str)}
    return out


def _row(session: Session, event_type: str, channel: str, lang: str) -> NotificationTemplate | None:
    return session.scalar(
        select(NotificationTemplate).where(
            NotificationTemplate.event_type == event_type,
            NotificationTemplate.channel == channel,
            NotificationTemplate.lang == lang,
        )
    )


def save(
    session: Session, event_type: str, channel: str, lang: str, content: Any, *, actor: Actor
) -> NotificationTemplate:
    """Create or replace an override (validated), audited."""
    clean = validate(event_type, channel, lang, content)
    row = _row(session, event_type, channel, lang)
    if row is None:
        row = NotificationTemplate(event_type=event_type, channel=channel, lang=lang, version=0)
        session.add(row)
    row.content = clean
    row.version = (row.version or 0) + 1
    row.updated_by = str(actor.id)
    row.updated_at = clock.now()
    audit_log.record(
        session, actor, "notification_template.save", target_type="notification_template",
        target_id=f"{event_type}/{channel}/{lang}", details={"version": row.version},
    )  # fmt: skip
    session.flush()
    forget_cache()
    return row


def remove(session: Session, event_type: str, channel: str, lang: str, *, actor: Actor) -> None:
    """Drop an override: the built-in wording applies again."""
    row = _row(session, event_type, channel, lang)
    if row is None:
        raise TemplateNotFound()
    session.delete(row)
    audit_log.record(session, actor, "notification_template.remove", target_type="notification_template",
                     target_id=f"{event_type}/{channel}/{lang}")  # fmt: skip
    session.flush()
    forget_cache()


def listing(session: Session, *, settings: Any) -> list[dict[str, Any]]:
    """Every template with the content that is sent (as `effective` picks it) and where that
    comes from (`source`): its own override, the inbox's (push without one of its own sends the
    inbox wording operators set), or the built-in wording."""
    rows = {(r.event_type, r.channel, r.lang): r for r in session.scalars(select(NotificationTemplate))}
    out = []
    for event_type in EVENTS:
        for channel in CHANNELS:
            for lang in channel_langs(channel):
                row = rows.get((event_type, channel, lang))
                inbox = rows.get((event_type, "inbox", lang)) if channel == "push" and row is None else None
                if row is not None:
                    content, source = dict(row.content), "own"
                elif inbox is not None:
                    content, source = dict(inbox.content), "inbox"
                else:
                    content = defaults(
                        event_type, channel, lang, wechat_template=settings.wechat_template,
                        sms_template=settings.sms_template,
                    )  # fmt: skip
                    source = "built_in"
                out.append({
                    "event_type": event_type, "channel": channel, "lang": lang, "content": content,
                    "source": source,
                    "overridden": row is not None, "version": row.version if row else 0,
                    "updated_by": row.updated_by if row else None,
                    "updated_at": row.updated_at if row else None,
                })  # fmt: skip
    return out
