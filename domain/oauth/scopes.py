"""The scopes a convenience app may ask for, each saying in plain Chinese what it reveals.

A sensitive scope lets the app learn something about the citizen's identity or act for them;
the consent page asks for a separate tick, and the citizen's identity level is checked against
the database when the grant is made and again at every refresh (a level that dropped, e.g. after
the identity was unbound, ends the grant's ability to mint tokens for that scope).
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.identity.levels import rank


@dataclass(frozen=True)
class Scope:
    name: str
    title_zh: str
    reveals_zh: str
    title_en: str
    reveals_en: str
    sensitive: bool = False
    min_level: str = "L1"
    citizen: bool = True  # False: a scope of the app itself (client_credentials)


SCOPES: dict[str, Scope] = {
    s.name: s
    for s in (
        Scope(
            "profile.basic",
            "基本资料",
            "您的姓名（部分隐藏，如“张*”）和实名认证等级",
            "Basic profile",
            "Your name, partly hidden (e.g. 张*), and your identity level",
        ),
        Scope(
            "identity.match",
            "核对身份",
            "核对该应用已掌握的姓名和身份证号是否与您的实名身份一致，"
            "只回答“一致/不一致”，不会提供您的身份证号",
            "Identity match",
            "Whether a name and ID number the app already holds match your verified "
            "identity: yes or no only; your ID number is never given out",
            sensitive=True,
            min_level="L2",
        ),
        Scope(
            "applications.read",
            "查看办件",
            "您在本平台办理的事项、进度和结果",
            "Read applications",
            "The services you applied for here, their progress and results",
        ),
        Scope(
            "applications.write",
            "代为申报",
            "以您的名义新建、填写并提交办事申请",
            "Apply for you",
            "Start, fill in and submit applications in your name",
            sensitive=True,
            min_level="L3",
        ),
        Scope(
            "notifications.send",
            "发送消息",
            "向您的消息中心发送通知",
            "Send notices",
            "Post notices to your inbox",
        ),
        Scope(
            "catalog.read",
            "查看服务目录",
            "公开的办事指南和服务目录",
            "Read the catalog",
            "The public service catalog and guides",
            citizen=False,
        ),
    )
}

CLIENT_ONLY = frozenset(s.name for s in SCOPES.values() if not s.citizen)


def parse(scope: str | None) -> list[str]:
    """Scope string → ordered unique names (unknown names kept, for the caller to refuse)."""
    seen: list[str] = []
    for part in (scope or "").split():
        if part not in seen:
            seen.append(part)
    return seen


def join(names: list[str] | set[str] | tuple[str, ...]) -> str:
    """Names → a scope string in the catalog's order (stable for comparisons and display)."""
    order = list(SCOPES)
    return " ".join(sorted(set(names), key=lambda n: order.index(n) if n in order else len(order)))


def sensitive(names: list[str] | set[str]) -> list[str]:
    return [n for n in names if n in SCOPES and SCOPES[n].sensitive]


def level_allows(name: str, level: str) -> bool:
    """Whether an account at `level` may hold scope `name`."""
    scope = SCOPES.get(name)
    return scope is not None and rank(level) >= rank(scope.min_level)


def describe(names: list[str], lang: str = "zh") -> list[dict]:
    out = []
    for n in names:
        s = SCOPES[n]
        zh = lang != "en"
        out.append({
            "scope": n,
            "title": s.title_zh if zh else s.title_en,
            "reveals": s.reveals_zh if zh else s.reveals_en,
            "sensitive": s.sensitive,
            "min_level": s.min_level,
        })  # fmt: skip
    return out
