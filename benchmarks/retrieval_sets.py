"""Extract the retrieval evaluation sets from technical-analysis libraries other people
wrote, so retrieval is measured on text nobody in this project wrote or tuned.

Each set has a knowledge base from ONE library's documentation, turned into Q&A pairs
the way an agent delivers them, and queries from OTHER libraries describing the same
indicators: their descriptions, their names, their abbreviations, misspellings of those
names and short "how do I read X for crypto" questions. The mapping between the
libraries' identifiers is explicit (``MAPPING`` below, written to ``mapping.json``).

Sources (pinned; the script refuses other versions, so the committed data can be
reproduced exactly):

| package | version | licence | used for |
|---|---|---|---|
| pandas-ta-classic | 0.8.32 | MIT | docstrings: the ``pandas_ta`` KB, queries elsewhere |
| stockstats | 0.6.10 | BSD-3-Clause | README: the ``stockstats`` KB, queries elsewhere |
| ta | 0.11.0 | MIT | class docstrings: names and descriptions (queries) |
| TA-Lib | 0.8.2 | BSD-2-Clause | function names and display names (queries) |
| talipp | 2.7.0 | MIT | class names and docstring titles (queries) |

The packages are read from the environment they are installed in (docstrings through
``ast``, nothing of pandas-ta, ta or talipp is imported; TA-Lib's names come from its
compiled module)::

    pip install 'inboxd[retrieval-data]'        # or the pins above, in any venv
    python benchmarks/retrieval_sets.py         # writes benchmarks/data/retrieval/

They are not dependencies of inboxd: the extracted JSON Lines are committed.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import importlib.metadata as metadata
import json
import random
import re
import sys
import textwrap
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "data" / "retrieval"

PINS = {
    "pandas-ta-classic": ("0.8.32", "MIT"),
    "stockstats": ("0.6.10", "BSD-3-Clause"),
    "ta": ("0.11.0", "MIT"),
    "TA-Lib": ("0.8.2", "BSD-2-Clause"),
    "talipp": ("2.7.0", "MIT"),
}

# One row per indicator that at least two libraries describe:
# key: (pandas-ta-classic functions, ta class, stockstats README heading, TA-Lib function,
#       talipp class). A tuple names several entries of one library that are the same
# indicator (pandas-ta has both ``eom`` and ``emv`` for Ease of Movement); None: absent.
MAPPING: dict[str, tuple[Any, str | None, str | None, str | None, str | None]] = {
    "sma": ("sma", "SMAIndicator", "Simple Moving Average", "SMA", "SMA"),
    "ema": ("ema", "EMAIndicator", "Exponential Moving Average", "EMA", "EMA"),
    "wma": ("wma", "WMAIndicator", "WMA - Weighted Moving Average", "WMA", "WMA"),
    # pandas-ta's rma (Wilder's) is a smoothed moving average too, but no text says so.
    "smma": (None, None, "SMMA - Smoothed Moving Average", None, "SMMA"),
    "dema": ("dema", None, None, "DEMA", "DEMA"),
    "tema": ("tema", None, "TEMA - Triple Exponential Moving Average", "TEMA", "TEMA"),
    "trima": ("trima", None, None, "TRIMA", None),
    "kama": ("kama", "KAMAIndicator", "KAMA - Kaufman's Adaptive Moving Average", "KAMA", "KAMA"),
    "hma": ("hma", None, "HMA - Hull Moving Average", None, "HMA"),
    "vwma": ("vwma", None, "VWMA - Volume Weighted Moving Average", None, "VWMA"),
    "t3": ("t3", None, None, "T3", "T3"),
    "alma": ("alma", None, None, None, "ALMA"),
    "zlma": ("zlma", None, None, None, "ZLEMA"),
    "mcginley": ("mcgd", None, None, None, "McGinleyDynamic"),
    "linreg": ("linreg", None, "LRMA - Linear Regression Moving Average", "LINEARREG", None),
    "linreg_slope": ("linregslope", None, None, "LINEARREG_SLOPE", None),
    "linreg_angle": ("linregangle", None, None, "LINEARREG_ANGLE", None),
    "linreg_intercept": ("linregintercept", None, None, "LINEARREG_INTERCEPT", None),
    "tsf": ("tsf", None, None, "TSF", None),
    "mama": ("mama", None, None, "MAMA", None),
    "midpoint": ("midpoint", None, None, "MIDPOINT", None),
    "midprice": ("midprice", None, None, "MIDPRICE", None),
    "vwap": ("vwap", "VolumeWeightedAveragePrice", None, None, "VWAP"),
    "macd": (
        "macd",
        "MACD",
        "MACD - Moving Average Convergence Divergence",
        "MACD",
        "MACD",
    ),
    "macdext": ("macdext", None, None, "MACDEXT", None),
    "macdfix": ("macdfix", None, None, "MACDFIX", None),
    "ppo": ("ppo", "PercentagePriceOscillator", "PPO - Percentage Price Oscillator", "PPO", None),
    "pvo": ("pvo", "PercentageVolumeOscillator", "Percentage Volume Oscillator (PVO)", None, None),
    "apo": ("apo", None, None, "APO", None),
    "rsi": ("rsi", "RSIIndicator", "RSI - Relative Strength Index", "RSI", "RSI"),
    "stochrsi": ("stochrsi", "StochRSIIndicator", "Stochastic RSI", "STOCHRSI", "StochRSI"),
    "stoch": ("stoch", "StochasticOscillator", None, "STOCH", "Stoch"),
    "stochf": ("stochf", None, None, "STOCHF", None),
    "kdj": ("kdj", None, "KDJ Indicator", None, None),
    "roc": ("roc", "ROCIndicator", "ROC - Rate of Change", "ROC", "ROC"),
    "rocp": ("rocp", None, None, "ROCP", None),
    "rocr": ("rocr", None, None, "ROCR", None),
    "rocr100": ("rocr100", None, None, "ROCR100", None),
    "mom": ("mom", None, None, "MOM", None),
    "cmo": ("cmo", None, "CMO - Chande Momentum Oscillator", "CMO", None),
    "kst": ("kst", "KSTIndicator", "KST - Know Sure Thing", None, "KST"),
    "coppock": ("coppock", None, "Coppock Curve", None, "CoppockCurve"),
    "ao": ("ao", "AwesomeOscillatorIndicator", "Awesome Oscillator", None, "AO"),
    "bop": ("bop", None, "Balance of Power", "BOP", "BOP"),
    "cti": ("cti", None, "Correlation Trend Indicator", None, None),
    "inertia": ("inertia", None, "Inertia Indicator", None, None),
    "psl": ("psl", None, "Psychological Line (PSL)", None, None),
    "willr": (
        "willr",
        "WilliamsRIndicator",
        "WR - Williams Overbought/Oversold Index",
        "WILLR",
        "Williams",
    ),
    "uo": ("uo", "UltimateOscillator", None, "ULTOSC", "UO"),
    "tsi": ("tsi", "TSIIndicator", None, None, "TSI"),
    "cci": ("cci", "CCIIndicator", "CCI - Commodity Channel Index", "CCI", "CCI"),
    "trix": ("trix", "TRIXIndicator", "TRIX - Triple Exponential Average", "TRIX", "TRIX"),
    "stc": ("stc", "STCIndicator", None, None, "STC"),
    "qqe": ("qqe", None, "QQE - Quantitative Qualitative Estimation", None, None),
    "rvgi": ("rvgi", None, "RVGI - Relative Vigor Index", None, None),
    "eri": ("eri", None, "ERI - Elder-Ray Index", None, None),
    "pgo": ("pgo", None, "Pretty Good Oscillator (PGO)", None, None),
    "efficiency_ratio": ("er", None, "KER - Kaufman's Efficiency Ratio", None, None),
    "supertrend": ("supertrend", None, "Supertrend", None, "SuperTrend"),
    "aroon": ("aroon", "AroonIndicator", "Aroon Oscillator", "AROON", "Aroon"),
    "ichimoku": ("ichimoku", "IchimokuIndicator", "Ichimoku Cloud", None, "Ichimoku"),
    "adx": ("adx", "ADXIndicator", "DMI - Directional Movement Index", "ADX", "ADX"),
    "adxr": ("adxr", None, None, "ADXR", None),
    "dx": ("dx", None, None, "DX", None),
    "plus_dm": ("plus_dm", None, None, "PLUS_DM", None),
    "minus_dm": ("minus_dm", None, None, "MINUS_DM", None),
    "vortex": ("vortex", "VortexIndicator", None, None, "VTX"),
    "psar": ("psar", "PSARIndicator", None, "SAR", "ParabolicSAR"),
    "sarext": ("sarext", None, None, "SAREXT", None),
    "dpo": ("dpo", "DPOIndicator", None, None, "DPO"),
    "chop": ("chop", None, "CHOP - Choppiness Index", None, "CHOP"),
    "cksp": ("cksp", None, None, None, "ChandeKrollStop"),
    "squeeze": ("squeeze", None, None, None, "TTM"),
    "bbands": ("bbands", "BollingerBands", "Bollinger Bands", "BBANDS", "BB"),
    "atr": ("atr", "AverageTrueRange", "ATR - Average True Range", "ATR", "ATR"),
    "natr": ("natr", None, None, "NATR", "NATR"),
    "true_range": ("true_range", None, "TR - True Range of Trading", "TRANGE", None),
    "keltner": ("kc", "KeltnerChannel", None, None, "KeltnerChannels"),
    "donchian": ("donchian", "DonchianChannel", None, None, "DonchianChannels"),
    "ulcer": ("ui", "UlcerIndex", None, None, None),
    "mass_index": ("massi", "MassIndex", None, None, "MassIndex"),
    "zscore": ("zscore", None, "Z-Score", None, None),
    "mad": ("mad", None, "MAD - Mean Absolute Deviation", None, None),
    "mean_deviation": ("md", None, None, None, "MeanDev"),
    "stdev": ("stdev", None, "Moving Standard Deviation", "STDDEV", "StdDev"),
    "variance": ("variance", None, "Moving Variance", "VAR", None),
    "beta": ("beta", None, None, "BETA", None),
    "correl": ("correl", None, None, "CORREL", None),
    "obv": ("obv", "OnBalanceVolumeIndicator", "OBV - On-Balance Volume", "OBV", "OBV"),
    "ad": ("ad", "AccDistIndexIndicator", None, "AD", "AccuDist"),
    "adosc": ("adosc", None, None, "ADOSC", "ChaikinOsc"),
    "cmf": ("cmf", "ChaikinMoneyFlowIndicator", None, None, None),
    "force_index": ("efi", "ForceIndexIndicator", None, None, "ForceIndex"),
    "eom": (("eom", "emv"), "EaseOfMovementIndicator", None, None, "EMV"),
    "pvt": ("pvt", "VolumePriceTrendIndicator", None, None, None),
    "nvi": ("nvi", "NegativeVolumeIndexIndicator", None, None, None),
    "mfi": ("mfi", "MFIIndicator", "MFI - Money Flow Index", "MFI", None),
    "kvo": ("kvo", None, None, None, "KVO"),
    "typical_price": (("hlc3", "typprice"), None, "Typical Price", "TYPPRICE", None),
    "median_price": (("hl2", "medprice"), None, None, "MEDPRICE", None),
    "average_price": (("avgprice", "ohlc4"), None, None, "AVGPRICE", None),
    "weighted_close": ("wcp", None, None, "WCLPRICE", None),
    "log_return": ("log_return", "DailyLogReturnIndicator", "Log Return of the Close", None, None),
    "ht_trendline": ("ht_trendline", None, None, "HT_TRENDLINE", None),
    "ht_dcperiod": ("ht_dcperiod", None, None, "HT_DCPERIOD", None),
    "ht_dcphase": ("ht_dcphase", None, None, "HT_DCPHASE", None),
    "ht_phasor": ("ht_phasor", None, None, "HT_PHASOR", None),
    "ht_sine": ("ht_sine", None, None, "HT_SINE", None),
    "ht_trendmode": ("ht_trendmode", None, None, "HT_TRENDMODE", None),
}
LIBRARIES = ("pandas_ta", "ta", "stockstats", "talib", "talipp")

# Written by us around other people's names: what a crypto trader types into a search box.
QUESTION_TEMPLATES = (
    "How do I read the {name} for crypto?",
    "What does the {name} tell me about Bitcoin?",
    "How do traders use the {name} on altcoin charts?",
    "Is the {name} useful for trading ETH?",
    "When does the {name} give a buy signal on BTC?",
)


# -- documents -------------------------------------------------------------------------------


@dataclass
class Doc:
    """One library's entry for one indicator."""

    library: str
    ident: str  # the library's own identifier (function, class, heading)
    title: str  # as the library writes it: "Relative Strength Index (RSI)"
    description: str = ""
    calculation: str = ""  # pandas-ta's Calculation/Formula section
    usage: str = ""  # stockstats' examples
    where: str = ""  # file and object it came from
    names: list[str] = field(default_factory=list)  # full names it gives
    abbreviations: list[str] = field(default_factory=list)


def _version(dist: str) -> str:
    try:
        found = metadata.version(dist)
    except metadata.PackageNotFoundError:
        sys.exit(f"{dist} is not installed; pip install 'inboxd[retrieval-data]'")
    wanted = PINS[dist][0]
    if found != wanted:
        sys.exit(f"{dist} {found} is installed, the sets are pinned to {wanted}")
    return found


def _package_dir(dist: str, top: str) -> Path:
    _version(dist)
    return Path(str(metadata.distribution(dist).locate_file(top)))


_HEADING = re.compile(r"^([A-Z][A-Za-z ]*):\s*$")
_URL = re.compile(r"https?://\S+")
_LABEL = re.compile(r"^[\w ]{1,20}:$")
# A stockstats paragraph about its column names is usage, not a description.
_USAGE = re.compile(r"`|df\[|set_dft_window|^Examples?:|default", re.MULTILINE)
_PARENS = re.compile(r"\s*\(([^()]*)\)\s*$")


def _sections(doc: str) -> tuple[str, str, dict[str, str]]:
    """(title, text before the first heading, heading -> dedented block) of a docstring."""
    lines = textwrap.dedent(doc).strip("\n").splitlines()
    title = lines[0].strip()
    intro: list[str] = []
    blocks: dict[str, list[str]] = {}
    current = intro
    for line in lines[1:]:
        match = _HEADING.match(line)
        if match and not line.startswith(" "):
            current = blocks.setdefault(match.group(1), [])
            continue
        current.append(line)
    return (
        title,
        _prose("\n".join(intro)),
        {k: textwrap.dedent("\n".join(v)).strip() for k, v in blocks.items()},
    )


def _prose(text: str) -> str:
    """Paragraphs joined into running text, without URLs (nor "From:" left without one)."""
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", _URL.sub("", text))]
    return "\n\n".join(p for p in paragraphs if p and not _LABEL.match(p))


def _split_title(title: str) -> tuple[str, list[str]]:
    """'Relative Strength Index (RSI)' -> ('Relative Strength Index', ['RSI'])."""
    title = title.strip().strip("'").replace("*beta*", "").replace("© 2013", "").strip()
    match = _PARENS.search(title)
    if not match:
        return title.strip("'\" ."), []
    inside = [p.strip() for p in match.group(1).split(",") if p.strip()]
    name = title[: match.start()].strip().strip("'\"")
    shorts = [p for p in inside if len(p) <= 16 and " " not in p]
    if not shorts and inside and " " not in name:  # "HL2 (Median Price)": name in brackets
        return inside[0], [name]
    return name, shorts


def pandas_ta_docs() -> dict[str, Doc]:
    """pandas-ta-classic: ``<function>.__doc__ = '''...'''`` in every indicator module."""
    base = _package_dir("pandas-ta-classic", "pandas_ta_classic")
    found: dict[str, Doc] = {}
    for path in sorted(base.glob("*/*.py")):
        if path.parent.name == "utils" or path.name.startswith("_"):
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            target = node.targets[0] if isinstance(node, ast.Assign) else None
            if not (
                isinstance(target, ast.Attribute)
                and target.attr == "__doc__"
                and isinstance(target.value, ast.Name)
                and isinstance(node.value, ast.Constant)  # type: ignore[union-attr]
            ):
                continue
            ident = target.value.id
            title, intro, blocks = _sections(str(node.value.value))  # type: ignore[union-attr]
            name, shorts = _split_title(title)
            calculation = blocks.get("Calculation") or blocks.get("Formula") or ""
            found[ident] = Doc(
                "pandas_ta",
                ident,
                title,
                intro,
                calculation,
                where=f"pandas_ta_classic/{path.parent.name}/{path.name}: {ident}.__doc__",
                names=[name],
                abbreviations=shorts,
            )
    return found


def _class_docs(base: Path, pattern: str) -> Iterator[tuple[Path, str, str]]:
    for path in sorted(base.glob(pattern)):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef) and (doc := ast.get_docstring(node)):
                yield path, node.name, doc


def ta_docs() -> dict[str, Doc]:
    """ta: the class docstring of every indicator (title, description, Args)."""
    base = _package_dir("ta", "ta")
    found: dict[str, Doc] = {}
    for path, cls, doc in _class_docs(base, "*.py"):
        title, intro, _ = _sections(doc)
        if intro.startswith("Args"):
            intro = ""
        if title.endswith("measures") or title.endswith("volume."):
            # ta's PPO and PVO docstrings start with a sentence, not a title.
            sentence = " ".join(doc.split("\n\n")[0].split())
            title = sentence.split(" is ")[0].removeprefix("The ")
            intro = _prose(sentence + "\n\n" + intro)
        name, shorts = _split_title(title.replace("KeltnerChannel", "Keltner Channel"))
        if " - " in name and not shorts:  # "EMA - Exponential Moving Average"
            short, name = (part.strip() for part in name.split(" - ", 1))
            shorts = [short]
        found[cls] = Doc(
            "ta",
            cls,
            title,
            intro,
            where=f"ta/{path.name}: {cls}",
            names=[name],
            abbreviations=shorts,
        )
    return found


def talipp_docs() -> dict[str, Doc]:
    """talipp: the first line of each indicator class's docstring is its name."""
    base = _package_dir("talipp", "talipp")
    found: dict[str, Doc] = {}
    for path, cls, doc in _class_docs(base / "indicators", "*.py"):
        title = doc.splitlines()[0].strip().rstrip(".")
        found[cls] = Doc(
            "talipp",
            cls,
            title,
            where=f"talipp/indicators/{path.name}: {cls}",
            names=[title],
            abbreviations=[cls] if cls.isupper() else [],
        )
    return found


def talib_docs() -> dict[str, Doc]:
    """TA-Lib: each function's display name and group, from the compiled module."""
    _version("TA-Lib")
    import talib  # only this script needs it
    from talib import abstract

    found: dict[str, Doc] = {}
    for group, functions in talib.get_function_groups().items():
        for function in functions:
            info = abstract.Function(function).info
            found[function] = Doc(
                "talib",
                function,
                info["display_name"],
                where=f"talib.abstract.Function({function!r}).info ({group})",
                names=[info["display_name"]],
                abbreviations=[function],
            )
    return found


_STOCKSTATS_HEADING = re.compile(r"^#### (?:\[(?P<linked>[^\]]+)\]\([^)]*\)|(?P<plain>.+))$")


def stockstats_docs() -> dict[str, Doc]:
    """stockstats: one README section (``#### ...``) per indicator, from the package's
    long description (the README shipped in its metadata)."""
    _version("stockstats")
    readme = metadata.metadata("stockstats").get_payload()  # type: ignore[attr-defined]
    found: dict[str, Doc] = {}
    heading: str | None = None
    body: list[str] = []

    def close() -> None:
        if heading is not None:
            found[heading] = _stockstats_doc(heading, body)

    for line in str(readme).splitlines():
        match = _STOCKSTATS_HEADING.match(line)
        if match or line.startswith(("## ", "### ", "---")):
            close()
            heading, body = None, []
            if match:
                heading = (match.group("linked") or match.group("plain")).strip()
            continue
        body.append(line)
    close()
    return found


def _stockstats_doc(heading: str, body: list[str]) -> Doc:
    """A section's paragraphs up to the first that shows ``df[...]`` columns or defaults
    (the description), and from there on (the usage)."""
    text = re.sub(r"```[a-z]*", "", "\n".join(body))
    prose: list[str] = []
    usage: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        if not paragraph.strip():
            continue
        if usage or _USAGE.search(paragraph):
            usage.append(paragraph)
        else:
            prose.append(paragraph)
    if " - " in heading:
        short, name = (part.strip() for part in heading.split(" - ", 1))
        shorts = [short]
    else:
        name, shorts = _split_title(heading)
    return Doc(
        "stockstats",
        heading,
        heading,
        _prose("\n\n".join(prose)),
        usage=_prose("\n\n".join(usage)),
        where=f"stockstats README: {heading}",
        names=[name],
        abbreviations=shorts,
    )


# -- sets ------------------------------------------------------------------------------------


def _idents(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(value) if isinstance(value, tuple) else (value,)


def _key_of(library: str) -> dict[str, str]:
    """The library's identifier -> the mapping key."""
    column = LIBRARIES.index(library)
    return {ident: key for key, row in MAPPING.items() for ident in _idents(row[column])}


def _first_sentences(text: str, limit: int = 320) -> str:
    """The first paragraph, cut at a sentence end before ``limit`` characters."""
    paragraph = text.split("\n\n")[0]
    if len(paragraph) <= limit:
        return paragraph
    cut = max(paragraph.rfind(". ", 0, limit), paragraph.rfind("; ", 0, limit))
    return paragraph[: cut + 1] if cut > 40 else paragraph[:limit].rsplit(" ", 1)[0]


def _kb_pairs(
    library: str, docs: dict[str, Doc], second: tuple[str, str, str]
) -> list[dict[str, Any]]:
    """Per entry: "What is the X (ABBR)?" -> its description, and a second pair
    ``(kind, question template, Doc field)`` -> that field, each only if there is text."""
    keys = _key_of(library)
    kind, template, field_name = second
    pairs = []
    for ident, doc in docs.items():
        name = doc.names[0]
        label = f"{name} ({doc.abbreviations[0]})" if doc.abbreviations else name
        asked = [
            ("definition", f"What is the {label}?", doc.description),
            (kind, template.format(label=label), getattr(doc, field_name)),
        ]
        for which, question, answer in asked:
            if answer:
                pairs.append(_pair(library, ident, which, question, doc, keys) | {"answer": answer})
    return pairs


def _pandas_ta_pairs(docs: dict[str, Doc]) -> list[dict[str, Any]]:
    question = "How is the {label} calculated?"
    return _kb_pairs(
        "pandas_ta", dict(sorted(docs.items())), ("calculation", question, "calculation")
    )


def _stockstats_pairs(docs: dict[str, Doc]) -> list[dict[str, Any]]:
    question = "How do I get the {label} with stockstats?"
    return _kb_pairs("stockstats", docs, ("usage", question, "usage"))


def _pair(
    library: str, ident: str, kind: str, question: str, doc: Doc, keys: dict[str, str]
) -> dict[str, Any]:
    abbreviation = doc.abbreviations[0] if doc.abbreviations else ident
    return {
        "id": f"{library}:{ident}:{kind}",
        "key": keys.get(ident),  # None: an indicator no other library names (a distractor)
        # What an agent would write in the "indicator" field: the library's abbreviation.
        "indicator": abbreviation if library == "stockstats" else ident,
        "type": kind,
        "question": question,
        "source": doc.where,
    }


def _typo(name: str, rng: random.Random) -> str | None:
    """One keyboard slip in the longest-but-one word: swap, drop or double a letter."""
    words = name.split()
    candidates = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not candidates:
        return None
    i = rng.choice(candidates)
    word = words[i]
    at = rng.randrange(1, len(word) - 2)
    kind = rng.choice(("swap", "drop", "double"))
    if kind == "swap":
        word = word[:at] + word[at + 1] + word[at] + word[at + 2 :]
    elif kind == "drop":
        word = word[:at] + word[at + 1 :]
    else:
        word = word[:at] + word[at] + word[at:]
    words[i] = word
    typo = " ".join(words)
    return typo if typo != name else None


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w%]+", " ", text.casefold()).split())


def _queries(
    kb_library: str,
    present: set[str],
    docs: dict[str, dict[str, Doc]],
    seed: int,
) -> list[dict[str, Any]]:
    """Queries for every mapped indicator the knowledge base has, from the other libraries."""
    rng = random.Random(seed)
    found: list[dict[str, Any]] = []
    seen: set[str] = set()

    def add(text: str, kind: str, key: str, doc: Doc) -> None:
        text = " ".join(text.split())
        if len(_norm(text)) < 2 or _norm(text) in seen:
            return
        seen.add(_norm(text))
        found.append(
            {
                "query": text,
                "kind": kind,
                "key": key,
                "source": f"{doc.library}: {doc.where}",
            }
        )

    others = [lib for lib in LIBRARIES if lib != kb_library]
    for key in sorted(present):
        row = MAPPING[key]
        entries = [
            docs[lib][ident]
            for lib in others
            for ident in _idents(row[LIBRARIES.index(lib)])
            if ident in docs[lib]
        ]
        if not entries:
            continue
        for doc in entries:
            if len(doc.description) >= 40 and not _USAGE.search(doc.description):
                add(_first_sentences(doc.description), "description", key, doc)
        for doc in entries:
            for name in doc.names:
                add(name, "name", key, doc)
            for short in doc.abbreviations:
                add(short, "abbreviation", key, doc)
        named = [doc for doc in entries if doc.names and len(doc.names[0]) > 3]
        if named:
            doc = rng.choice(named)
            typo = _typo(doc.names[0], rng)
            if typo:
                add(typo, "misspelling", key, doc)
            template = rng.choice(QUESTION_TEMPLATES)
            add(template.format(name=rng.choice(named).names[0]), "question", key, doc)
    for number, query in enumerate(found, start=1):
        query["id"] = f"{kb_library}-q{number:03d}"
    return found


def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in rows]
    path.write_text("".join(lines), encoding="utf-8")
    return len(lines)


def build(out: Path, seed: int = 13) -> dict[str, Any]:
    """Read the installed libraries and write every set under ``out``."""
    docs = {
        "pandas_ta": pandas_ta_docs(),
        "ta": ta_docs(),
        "stockstats": stockstats_docs(),
        "talib": talib_docs(),
        "talipp": talipp_docs(),
    }
    missing = [
        f"{lib}:{ident}"
        for row in MAPPING.values()
        for lib, value in zip(LIBRARIES, row, strict=True)
        for ident in _idents(value)
        if ident not in docs[lib]
    ]
    if missing:
        sys.exit(f"MAPPING names entries the installed libraries lack: {missing}")
    kb_builders = {"pandas_ta": _pandas_ta_pairs, "stockstats": _stockstats_pairs}
    summary: dict[str, Any] = {"sets": {}}
    for number, (name, make) in enumerate(kb_builders.items()):
        pairs = make(docs[name])  # type: ignore[operator]
        present = {p["key"] for p in pairs if p["key"]}
        queries = _queries(name, present, docs, seed + number)
        kinds: dict[str, int] = {}
        for query in queries:
            kinds[query["kind"]] = kinds.get(query["kind"], 0) + 1
        summary["sets"][name] = {
            "pairs": _write_jsonl(out / name / "pairs.jsonl", pairs),
            "queries": _write_jsonl(out / name / "queries.jsonl", queries),
            "indicators": len({p["indicator"] for p in pairs}),
            "mapped_indicators": len(present),
            "query_kinds": kinds,
        }
    summary["sources"] = {
        dist: {"version": version, "licence": licence} for dist, (version, licence) in PINS.items()
    }
    summary["seed"] = seed
    mapping = {
        key: {lib: list(_idents(v)) for lib, v in zip(LIBRARIES, row, strict=True) if v}
        for key, row in MAPPING.items()
    }
    (out / "mapping.json").write_text(json.dumps(mapping, indent=1, sort_keys=True) + "\n")
    digest = hashlib.sha256()
    for path in sorted(out.rglob("*.jsonl")):
        digest.update(path.read_bytes())
    summary["sha256"] = digest.hexdigest()
    (out / "sets.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder (default {OUT})")
    parser.add_argument("--seed", type=int, default=13, help="misspellings and questions")
    args = parser.parse_args()
    print(json.dumps(build(args.out, args.seed), indent=1))


if __name__ == "__main__":
    main()
