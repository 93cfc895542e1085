"""The model's ten districts, in the order of their codes (the space axis, as calendar.py is the
time axis): a short key for parameter paths and column names, and the Chinese and English names.

The geography (`sim.population.geography`) reads the districts' boundaries and figures and refuses
a districts.csv whose names or order differ from these.
"""

from __future__ import annotations

DISTRICTS: tuple[tuple[str, str, str], ...] = (
    ("xiaodian", "小店区", "Xiaodian"),
    ("yingze", "迎泽区", "Yingze"),
    ("xinghualing", "杏花岭区", "Xinghualing"),
    ("jiancaoping", "尖草坪区", "Jiancaoping"),
    ("wanbailin", "万柏林区", "Wanbailin"),
    ("jinyuan", "晋源区", "Jinyuan"),
    ("qingxu", "清徐县", "Qingxu"),
    ("yangqu", "阳曲县", "Yangqu"),
    ("loufan", "娄烦县", "Loufan"),
    ("gujiao", "古交市", "Gujiao"),
)
DISTRICT_KEYS = tuple(key for key, _, _ in DISTRICTS)
