"""Tests for the indicator catalog: the shipped data, its loader and the name resolver."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.core.catalog import Catalog, Indicator, Session, load_catalog, normalize_name
from daemon.core.errors import ConfigError

# The plan's themes, copied from the seed (session 1 was delivered before the batch).
SEED_THEMES = {
    1: "Derivatives",
    2: "Trend Indicators (MA)",
    3: "Trend Indicators (Advanced)",
    4: "Momentum (Part 1)",
    5: "Momentum (Part 2)",
    6: "Volatility",
    7: "Volume (Part 1)",
    8: "Volume (Part 2)",
    9: "Network Activity (Part 1)",
    10: "Network Activity (Part 2)",
    11: "Network Activity (Part 3)",
    12: "Supply Metrics (Part 1)",
    13: "Supply Metrics (Part 2)",
    14: "HODL Metrics",
    15: "Profit/Loss Metrics",
    16: "Holder Behavior (Part 1)",
    17: "Holder Behavior (Part 2)",
    18: "Mining & Staking (Part 1)",
    19: "Mining & Staking (Part 2)",
    20: "Network Value Metrics",
    21: "Stock-to-Flow Models",
    22: "Realized Metrics",
    23: "Social Metrics (Part 1)",
    24: "Social Metrics (Part 2)",
    25: "Funding & Derivatives (Part 1)",
    26: "Funding & Derivatives (Part 2)",
    27: "Funding & Derivatives (Part 3)",
    28: "Institutional & Whale",
    29: "Protocol Metrics",
    30: "DEX Metrics (Part 1)",
    31: "DEX Metrics (Part 2)",
    32: "Lending Protocol",
    33: "Orderbook",
    34: "Exchange-Specific",
    35: "Dominance Metrics",
    36: "Market Cap Metrics",
    37: "Correlation Metrics",
    38: "Statistical Indicators",
    39: "Cycle Indicators",
    40: "Network Growth",
    41: "Stablecoin Metrics",
    42: "NFT Metrics (Part 1)",
    43: "NFT Metrics (Part 2)",
    44: "Token-Specific",
}

CATALOG = load_catalog()
ALL_SPELLINGS = [
    (indicator.id, spelling)
    for indicator in CATALOG.indicators
    for spelling in (indicator.id, indicator.name, *indicator.aliases)
]


def _index_key(spelling: str) -> str:
    """Key a catalog spelling the way the catalog indexes it ('/' inside a name is a word gap)."""
    return normalize_name(re.sub(r"[/\\]", " ", spelling))


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "my_catalog.toml"
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- the shipped catalog


def test_shipped_catalog_has_227_unique_indicators() -> None:
    """The shipped catalog holds 227 indicators with 227 distinct ids."""
    ids = [indicator.id for indicator in CATALOG.indicators]
    assert len(ids) == 227
    assert len(set(ids)) == 227


def test_sessions_are_1_to_44_with_the_seed_themes() -> None:
    """Sessions 1..44 exist, in order, each with the theme the seed's plan gives it."""
    assert [session.number for session in CATALOG.sessions] == list(range(1, 45))
    assert {session.number: session.theme for session in CATALOG.sessions} == SEED_THEMES


def test_session_sizes_are_12_then_5() -> None:
    """Session 1 has 12 indicators and every other session exactly 5."""
    assert len(CATALOG.indicators_for_session(1)) == 12
    for number in range(2, 45):
        assert len(CATALOG.indicators_for_session(number)) == 5, number


def test_only_session_1_is_delivered() -> None:
    """Session 1 is marked delivered; sessions 2-44 are not."""
    assert [s.number for s in CATALOG.sessions if s.delivered] == [1]


def test_session_1_is_derivatives() -> None:
    """Session 1 covers the core derivatives indicators."""
    ids = {indicator.id for indicator in CATALOG.indicators_for_session(1)}
    assert {"funding_rate", "open_interest", "long_short_ratio", "futures_basis"} <= ids
    assert {"liquidations", "put_call_ratio", "implied_volatility", "max_pain"} <= ids


def test_session_2_matches_the_example_assignment() -> None:
    """Session 2 is exactly sma, ema, wma, macd, adx, in that order, as in the assignment."""
    session_two = CATALOG.indicators_for_session(2)
    assert [indicator.id for indicator in session_two] == ["sma", "ema", "wma", "macd", "adx"]
    assert [indicator.name for indicator in session_two] == [
        "Simple Moving Average",
        "Exponential Moving Average",
        "Weighted Moving Average",
        "Moving Average Convergence Divergence",
        "Average Directional Index",
    ]


def test_indicator_category_is_its_sessions() -> None:
    """Every indicator carries its session's category slug."""
    for indicator in CATALOG.indicators:
        assert indicator.category == CATALOG.session(indicator.session).category


def test_ids_are_normalised_slugs() -> None:
    """Every id is a snake_case slug that normalises to itself."""
    for indicator in CATALOG.indicators:
        assert re.fullmatch(r"[a-z0-9]+(?:_[a-z0-9]+)*", indicator.id)
        assert normalize_name(indicator.id) == indicator.id


def test_no_spelling_is_claimed_by_two_indicators() -> None:
    """No alias or name is shared by two indicators, nor equals another indicator's id."""
    owner: dict[str, str] = {}
    for indicator_id, spelling in ALL_SPELLINGS:
        key = _index_key(spelling)
        assert key, (indicator_id, spelling)
        assert owner.setdefault(key, indicator_id) == indicator_id, (spelling, owner[key])


def test_common_abbreviations_are_known() -> None:
    """Abbreviations users type resolve to the indicator they stand for."""
    expected = {
        "RSI": "rsi",
        "MACD": "macd",
        "ATR": "atr",
        "OBV": "obv",
        "VWAP": "vwap",
        "MVRV": "mvrv_ratio",
        "NVT": "nvt_ratio",
        "SOPR": "sopr",
        "NUPL": "nupl",
        "CDD": "coin_days_destroyed",
        "S2F": "stock_to_flow",
        "TVL": "tvl",
        "OI": "open_interest",
        "SSR": "stablecoin_supply_ratio",
        "FDV": "fully_diluted_valuation",
        "CVD": "cumulative_volume_delta",
        "LTV": "loan_to_value",
        "Puell Multiple": "puell_multiple",
        "HODL Waves": "hodl_waves",
        "Hash Ribbons": "hash_ribbons",
        "Realized Cap": "realized_cap",
    }
    for text, indicator_id in expected.items():
        found = CATALOG.resolve(text)
        assert found is not None, text
        assert found.id == indicator_id, text


# ---------------------------------------------------------------- resolving names


@pytest.mark.parametrize(
    "text",
    [
        "rsi",
        "RSI",
        "RSI_qa_pairs.json",
        "relative-strength-index_qa_pairs.json",
        "session_04/rsi.json",
        "session_04\\RSI_qa_pairs.jsonl",
        "/srv/inboxd/outbox/droid/session_04/rsi_qa_pairs.json",
        "Relative Strength Index",
        "relative strength index (14)",
        "RSI (14)",
        "RSI14",
        "rsi_14",
        "  RSI-14  ",
        "rsi_qa.json",
        "rsi_pairs.json",
        "rsi_qa_pairs (1).json",
    ],
)
def test_spellings_of_rsi_resolve_to_rsi(text: str) -> None:
    """File names, paths, display names and parameterised forms of RSI all resolve to rsi."""
    found = CATALOG.resolve(text)
    assert found is not None
    assert found.id == "rsi"


@pytest.mark.parametrize(
    ("text", "indicator_id"),
    [
        ("Long/Short Ratio", "long_short_ratio"),
        ("session_01/L/S ratio.json", "long_short_ratio"),
        ("Put/Call Ratio", "put_call_ratio"),
        ("MC/TVL", "mcap_to_tvl"),
        ("session_29/MC/TVL_qa_pairs.json", "mcap_to_tvl"),
        ("EMA 200", "ema"),
        ("sma50_qa_pairs.json", "sma"),
        ("TOTAL2", "total2"),
        ("total3_qa_pairs.json", "total3"),
        ("Williams %R", "williams_r"),
        ("Crypto Fear & Greed Index", "fear_greed_index"),
        ("MVRV Z-Score", "mvrv_z_score"),
        ("STH-SOPR", "sth_sopr"),
        ("parabolic_sar_qa_pairs.json", "parabolic_sar"),
        ("Miners' Position Index", "miners_position_index"),
    ],
)
def test_other_spellings_resolve(text: str, indicator_id: str) -> None:
    """Names with '/', parameters, punctuation and period numbers resolve to the right id."""
    found = CATALOG.resolve(text)
    assert found is not None
    assert found.id == indicator_id


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "   ",
        "qa_pairs.json",
        "session_07/",
        "unknown_indicator_qa_pairs.json",
        "session_07/unknown.json",
        "total4",
        "moving average",
        "RSX",
    ],
)
def test_unknown_names_resolve_to_none(text: str | None) -> None:
    """Unknown, empty or missing names resolve to None."""
    assert CATALOG.resolve(text) is None


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("RSI_qa_pairs.json", "rsi"),
        ("relative-strength-index-qa-pairs.jsonl", "relative_strength_index"),
        ("session_04/rsi.json", "rsi"),
        ("RSI (14)", "rsi"),
        ("RSI14", "rsi14"),
        ("Bollinger Bands (20, 2)", "bollinger_bands"),
        ("Williams %R", "williams_r"),
        ("BTC.D", "btc_d"),
        ("a  --  b", "a_b"),
        ("Long/Short Ratio", "short_ratio"),
    ],
)
def test_normalize_name_examples(text: str, key: str) -> None:
    """normalize_name applies the documented rules (last path part, suffixes, parameters)."""
    assert normalize_name(text) == key


def test_lookups_by_id_and_session() -> None:
    """indicator() and session() find exact entries and raise KeyError for unknown ones."""
    assert CATALOG.indicator("rsi").name == "Relative Strength Index"
    assert CATALOG.session(4).theme == "Momentum (Part 1)"
    with pytest.raises(KeyError):
        CATALOG.indicator("RSI")
    with pytest.raises(KeyError):
        CATALOG.session(45)
    with pytest.raises(KeyError):
        CATALOG.indicators_for_session(0)


def test_shipped_catalog_is_cached() -> None:
    """Loading the shipped catalog twice returns the same object."""
    assert load_catalog() is load_catalog()


def test_models_are_frozen() -> None:
    """Sessions and indicators cannot be changed after loading."""
    with pytest.raises(ValueError, match="frozen"):
        CATALOG.indicators[0].id = "changed"  # type: ignore[misc]


# ---------------------------------------------------------------- user catalogs

VALID = """
[[sessions]]
number = 1
theme = "Basics"
category = "basics"

[[sessions]]
number = 2
theme = "More"
category = "more"

[[indicators]]
id = "alpha"
name = "Alpha Index"
aliases = ["A I"]
session = 1
category = "basics"

[[indicators]]
id = "beta"
name = "Beta Ratio"
session = 2
category = "more"
"""


def test_user_catalog_file_is_read(tmp_path: Path) -> None:
    """A valid user catalog loads from its own file, not the shipped one."""
    catalog = load_catalog(_write(tmp_path, VALID))
    assert isinstance(catalog, Catalog)
    assert [s.number for s in catalog.sessions] == [1, 2]
    assert [i.id for i in catalog.indicators] == ["alpha", "beta"]
    found = catalog.resolve("session_01/A-I_qa_pairs.json")
    assert found is not None
    assert found.id == "alpha"
    assert catalog.resolve("rsi") is None
    assert catalog.indicator("beta").aliases == ()


BAD_CATALOGS = {
    "toml_syntax": (
        VALID.replace('theme = "More"', "theme = More"),
        ["not valid TOML", "line 9"],
    ),
    "missing_key": (
        VALID.replace('name = "Beta Ratio"\n', ""),
        ["[[indicators]] entry #2", "'beta'", "missing key 'name'"],
    ),
    "invalid_value": (
        VALID.replace("session = 2", 'session = "2"'),
        ["[[indicators]] entry #2", "'beta'", "key 'session'"],
    ),
    "aliases_not_a_list": (
        VALID.replace('aliases = ["A I"]', 'aliases = "AI"'),
        ["'alpha'", "key 'aliases' must be a list of strings"],
    ),
    "bad_id": (
        VALID.replace('id = "beta"', 'id = "Beta Ratio"'),
        ["[[indicators]] entry #2", "key 'id' must be a snake_case slug", "'Beta Ratio'"],
    ),
    "blank_alias": (
        VALID.replace('aliases = ["A I"]', 'aliases = ["A I", " "]'),
        ["[[indicators]] entry #1 (id 'alpha')", "key 'aliases.1' must not be blank"],
    ),
    "empty_file": ("", ["no [[sessions]] tables"]),
    "unknown_key": (
        VALID.replace('aliases = ["A I"]', 'alias = ["AI"]'),
        ["'alpha'", "unknown key 'alias'"],
    ),
    "bad_session_entry": (
        VALID.replace('theme = "Basics"\n', ""),
        ["[[sessions]] entry #1", "missing key 'theme'"],
    ),
    "duplicate_id": (
        VALID.replace('id = "beta"', 'id = "alpha"'),
        ["indicator id 'alpha' is used twice"],
    ),
    "alias_claimed_twice": (
        VALID.replace('name = "Beta Ratio"', 'name = "Beta Ratio"\naliases = ["a-i"]'),
        ["'a-i'", "'beta'", "'A I'", "'alpha'", "'a_i'"],
    ),
    "alias_is_another_id": (
        VALID.replace('name = "Beta Ratio"', 'name = "Beta Ratio"\naliases = ["Alpha"]'),
        ["'Alpha'", "'beta'", "'alpha'"],
    ),
    "unknown_session": (
        VALID.replace("session = 2", "session = 7"),
        ["indicator 'beta' is in session 7"],
    ),
    "session_without_indicators": (
        VALID + '\n[[sessions]]\nnumber = 3\ntheme = "Empty"\ncategory = "empty"\n',
        ["session 3 ('Empty') has no indicators"],
    ),
    "category_mismatch": (
        VALID.replace('session = 2\ncategory = "more"', 'session = 2\ncategory = "basics"'),
        ["indicator 'beta' has category 'basics'", "session 2 has category 'more'"],
    ),
    "duplicate_session": (
        VALID.replace("number = 2", "number = 1"),
        ["session 1 is defined twice"],
    ),
    "no_sessions": (
        VALID.replace("[[sessions]]", "[[session]]"),
        ["unknown top-level key(s) 'session'"],
    ),
    "empty_alias": (
        VALID.replace('aliases = ["A I"]', 'aliases = ["(AI)"]'),
        ["alias '(AI)' of indicator 'alpha' matches nothing"],
    ),
    "suffixed_id": (
        VALID.replace('id = "beta"', 'id = "beta_pairs"'),
        ["indicator id 'beta_pairs' would be matched as 'beta'"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CATALOGS))
def test_bad_user_catalog_names_file_and_item(tmp_path: Path, case: str) -> None:
    """Each kind of mistake in a user catalog gives a ConfigError naming the file and item."""
    text, fragments = BAD_CATALOGS[case]
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_catalog(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_missing_user_catalog_names_file(tmp_path: Path) -> None:
    """A catalog path that does not exist gives a ConfigError naming it."""
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        load_catalog(path)


def test_catalog_built_in_code_is_validated() -> None:
    """Catalog() itself applies the cross-checks, naming its source."""
    session = Session(number=1, theme="T", category="t")
    one = Indicator(id="one", name="One", aliases=("uno",), session=1, category="t")
    two = Indicator(id="two", name="Two", aliases=("UNO",), session=1, category="t")
    with pytest.raises(ConfigError, match=r"^test: .*'two'.*'one'"):
        Catalog([session], [one, two], source="test")


# ---------------------------------------------------------------- properties

_WRAPPERS = [
    "{}",
    "{}_qa_pairs.json",
    "session_07/{}.json",
    "{}-qa-pairs.jsonl",
    "/srv/outbox/droid/session_07/{}_qa_pairs.json",
]


@settings(database=None, deadline=None)
@given(st.text())
def test_normalize_name_is_idempotent(text: str) -> None:
    """normalize_name(normalize_name(x)) == normalize_name(x) for any text."""
    once = normalize_name(text)
    assert normalize_name(once) == once


@settings(database=None, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_normalize_name_is_case_insensitive(text: str) -> None:
    """Upper- and lower-casing ASCII text does not change its key."""
    assert normalize_name(text.upper()) == normalize_name(text) == normalize_name(text.lower())


@settings(database=None, deadline=None)
@given(st.sampled_from(ALL_SPELLINGS), st.sampled_from(_WRAPPERS), st.booleans())
def test_every_spelling_resolves_wrapped(
    spelling: tuple[str, str], wrapper: str, upper: bool
) -> None:
    """Each id, name and alias resolves to its indicator, bare or as a file name or path."""
    indicator_id, text = spelling
    text = text.upper() if upper else text
    found = CATALOG.resolve(wrapper.format(text))
    assert found is not None, wrapper.format(text)
    assert found.id == indicator_id


@pytest.mark.parametrize("wrapper", ["{}", "{}_qa_pairs.json", "session_07/{}.json"])
def test_every_spelling_resolves_exhaustively(wrapper: str) -> None:
    """Every id, name and alias of every indicator resolves, bare and wrapped as a file."""
    for indicator_id, spelling in ALL_SPELLINGS:
        found = CATALOG.resolve(wrapper.format(spelling))
        assert found is not None, (wrapper, spelling)
        assert found.id == indicator_id, (wrapper, spelling, found.id)
