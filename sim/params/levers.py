"""The policy levers: every parameter declared with `lever=Lever(...)`, in the plan's groups.

The app's lever panel and `eldercare levers` list these; nothing else keeps a list of levers.
"""

from __future__ import annotations

from sim.params.declare import ParamInfo
from sim.params.sections import Params

# The plan's groups of levers, in the order they are shown: key, Chinese and English labels.
GROUPS: tuple[tuple[str, str, str], ...] = (
    ("beds", "公办与民办养老床位 (2020年)", "Public and private beds by 2020"),
    ("medical", "医养结合", "Integrated medical care"),
    ("community", "社区养老服务中心与日间照料中心", "Community centres and day-care centres"),
    ("teams", "服务队伍与服务券", "Service teams and vouchers"),
    ("prices", "价格", "Prices"),
    ("eligibility", "补贴资格与补贴", "Subsidy eligibility and subsidies"),
    ("districts", "分区追加供给 (至2020年)", "Supply added in one district (by 2020)"),
)
GROUP_KEYS = tuple(key for key, _, _ in GROUPS)


def levers(params: Params | None = None) -> list[ParamInfo]:
    """Every lever's parameter (with its current value in `params`, default the plan), grouped
    as GROUPS and in declaration order within a group."""
    infos = [i for i in (params or Params()).describe() if i.lever is not None]
    unknown = {i.lever.group for i in infos} - set(GROUP_KEYS)
    if unknown:
        raise ValueError(f"lever group(s) {sorted(unknown)} not in GROUPS")
    return sorted(infos, key=lambda i: GROUP_KEYS.index(i.lever.group))


def group_label(key: str, lang: str) -> str:
    _, zh, en = GROUPS[GROUP_KEYS.index(key)]
    return en if lang == "en" else zh
