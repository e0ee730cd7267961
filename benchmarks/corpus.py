"""A generator of realistic synthetic Q&A pairs for the benchmarks.

Pairs look like what the research agent delivers (see /work/shared/examples): one file
per indicator of the shipped catalog, an object envelope (``indicator``,
``indicator_name``, ``session``, ``category``, ``qa_pairs``), and pairs with ``id``,
``question``, ``answer``, ``type``, ``difficulty``, ``tags`` and ``sources``.

Questions and answers are assembled from per-category facts (what the indicator
measures, how it is computed, where the data comes from, how to read it) and per-type
templates, with assets, timeframes, periods, levels and dates drawn at random, so two
pairs of one indicator differ in wording and in content (a few percent are deliberate
paraphrases, which the de-duplication stage should fold). Everything is deterministic
in ``seed``: an indicator's pairs depend only on the seed and the indicator id.

Usage::

    from benchmarks.corpus import generate, write_corpus
    pairs = generate(17_000, seed=7)                      # list of dicts
    files = write_corpus(root, 17_000, files=215, seed=7)  # outbox/<agent>/session_NN/...
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.core.catalog import Indicator, load_catalog

AGENT = "droid"

ASSETS = (
    ("Bitcoin", "BTC"),
    ("Ethereum", "ETH"),
    ("Solana", "SOL"),
    ("BNB", "BNB"),
    ("XRP", "XRP"),
    ("Cardano", "ADA"),
    ("Avalanche", "AVAX"),
    ("Chainlink", "LINK"),
    ("Dogecoin", "DOGE"),
    ("Polygon", "POL"),
    ("Arbitrum", "ARB"),
    ("Litecoin", "LTC"),
)
TIMEFRAMES = ("1-hour", "4-hour", "daily", "weekly", "15-minute", "monthly", "12-hour")
VENUES = ("Binance", "Coinbase", "OKX", "Bybit", "Deribit", "Kraken", "CME", "Bitfinex")
PROVIDERS = ("Glassnode", "CryptoQuant", "Coin Metrics", "Santiment", "Kaiko", "Dune", "Nansen")
PHASES = (
    "a parabolic bull run",
    "a prolonged bear market",
    "a sideways accumulation range",
    "a capitulation week",
    "the weeks after a halving",
    "a short squeeze",
    "a liquidity crunch",
    "a post-ETF-approval rally",
    "a macro risk-off selloff",
    "an altcoin season",
)
YEARS = ("2017", "2018", "2019", "2020", "2021", "2022", "2023", "2024")
EVENTS = (
    "the March 2020 crash",
    "the May 2021 deleveraging",
    "the Terra/LUNA collapse",
    "the FTX bankruptcy",
    "the 2024 halving",
    "the January 2024 spot ETF launch",
    "the November 2021 all-time high",
    "the June 2022 Celsius freeze",
    "the 2018 bear market bottom",
    "the August 2024 yen carry unwind",
)
DIFFICULTIES = ("beginner", "intermediate", "advanced")
SOURCES = (
    "https://www.investopedia.com/",
    "https://academy.glassnode.com/",
    "https://docs.cryptoquant.com/",
    "https://coinmetrics.io/",
    "https://www.tradingview.com/support/",
    "https://research.binance.com/",
    "https://insights.deribit.com/",
    "https://defillama.com/docs",
)


@dataclass(frozen=True)
class Facts:
    """What an answer can say about an indicator of one category."""

    measures: str  # "... measures <measures>"
    formula: str  # "... is computed as <formula>"
    data: str  # "the inputs come from <data>"
    high: str  # what a high / rising reading means
    low: str  # what a low / falling reading means
    pitfall: str  # a known weakness
    unit: str  # what the number is expressed in


_GENERIC = Facts(
    "a specific aspect of market structure",
    "a ratio of the current value to its own rolling average",
    "exchange and on-chain data aggregated by providers",
    "strengthening demand and rising participation",
    "fading interest and weaker demand",
    "it is sensitive to the data provider's methodology",
    "index points",
)

FACTS: dict[str, Facts] = {
    "derivatives": Facts(
        "positioning and leverage in futures and options markets",
        "the difference between derivative and spot prices, normalised by the spot price",
        "perpetual swap, futures and options order books on the major venues",
        "crowded long positioning and elevated leverage that can unwind violently",
        "bearish positioning, short crowding and the potential for a short squeeze",
        "readings differ between venues and between coin- and stablecoin-margined contracts",
        "percent per funding interval or annualised percent",
    ),
    "funding_derivatives": Facts(
        "the cost of leverage and the shape of derivatives pricing",
        "a volume- or open-interest-weighted average of per-venue values",
        "funding, open interest and options surfaces from derivatives venues",
        "speculative excess, with longs paying a premium to keep positions open",
        "risk aversion and hedging demand dominating speculative flows",
        "weighting schemes change the picture when one venue dominates volume",
        "annualised percent",
    ),
    "trend": Facts(
        "the direction and persistence of the price trend",
        "an average of past closing prices over a lookback window, sometimes with decaying weights",
        "OHLC candles from spot exchanges",
        "an established uptrend with price holding above the average",
        "a downtrend or a loss of trend strength",
        "it lags price, so signals arrive after a good part of the move",
        "price units of the quote currency",
    ),
    "momentum": Facts(
        "the speed and strength of recent price changes",
        "the ratio of recent gains to recent losses over a lookback, scaled to a bounded range",
        "closing, high and low prices of each candle",
        "overbought conditions, strong buying pressure and the risk of a pullback",
        "oversold conditions and selling exhaustion",
        "it can stay overbought or oversold for long periods in strong trends",
        "a bounded oscillator scale",
    ),
    "volatility": Facts(
        "how widely price swings around its mean",
        "the standard deviation or average true range of returns over a rolling window",
        "high, low and closing prices",
        "expanding volatility, often near breakouts or capitulations",
        "a volatility squeeze that frequently precedes a large move",
        "it says nothing about direction, only about the size of moves",
        "percent or price units",
    ),
    "volume": Facts(
        "whether traded volume confirms price moves",
        "a running total of volume signed by the direction of each candle's close",
        "exchange-reported spot volume per candle",
        "accumulation, with volume flowing in on up-moves",
        "distribution, with volume leaving on down-moves",
        "wash trading on smaller venues inflates reported volume",
        "units of volume",
    ),
    "network_activity": Facts(
        "how intensively the blockchain is used",
        "a count or sum of on-chain events per block interval, smoothed over days",
        "full-node data on transactions, addresses and fees",
        "growing usage and demand for block space",
        "declining usage and a quieter network",
        "batching, exchanges and spam transactions distort raw counts",
        "transactions, addresses or native units per day",
    ),
    "network_growth": Facts(
        "how fast the user base of the network expands",
        "the number of first-time or non-empty entities per day",
        "address and entity clustering of the full chain history",
        "adoption accelerating and new participants arriving",
        "stagnating adoption and users leaving",
        "one person can control many addresses, so entity heuristics matter",
        "addresses or entities",
    ),
    "network_value": Facts(
        "whether the network is over- or under-valued relative to its fundamentals",
        "market cap divided by a fundamental value such as realized cap or transfer volume",
        "market prices combined with on-chain transfer and UTXO data",
        "overvaluation comparable to past cycle tops",
        "undervaluation that historically marked accumulation zones",
        "the thresholds drift from cycle to cycle as the asset matures",
        "a dimensionless ratio",
    ),
    "profit_loss": Facts(
        "the profit or loss realised or held by market participants",
        "the value of coins at the time they move divided by their value when they last moved",
        "UTXO or account histories priced at creation and spend time",
        "holders sitting on profits and tempted to take them",
        "holders capitulating and selling at a loss",
        "exchange-internal transfers can be counted as spends",
        "a ratio around 1 or a native-unit amount",
    ),
    "holder_behavior": Facts(
        "how long-term and short-term holders behave",
        "an on-chain metric split by the age of coins (155 days is the usual cut-off)",
        "UTXO ages and cohort balances",
        "old coins moving, which often happens near cycle tops",
        "holders accumulating and coins maturing into long-term supply",
        "the 155-day cut-off is a convention, not a law",
        "a ratio or native units",
    ),
    "hodl": Facts(
        "the age distribution of the coin supply",
        "the share of supply whose coins last moved within each age band",
        "UTXO creation times across the full chain",
        "young coins dominating, typical of distribution near tops",
        "old coins dominating, typical of bear-market accumulation",
        "lost coins sit permanently in the oldest bands",
        "percent of supply",
    ),
    "supply": Facts(
        "how much of the asset exists and how much of it can trade",
        "the sum of balances in a given class of addresses or the issuance schedule",
        "protocol rules and on-chain balances",
        "supply growth or coins becoming liquid",
        "supply tightening as coins move to illiquid holders",
        "definitions of circulating supply differ between data providers",
        "coins or tokens",
    ),
    "mining_staking": Facts(
        "the health and economics of the miners or validators securing the chain",
        "block rewards plus fees, related to the hash rate or stake securing the network",
        "block headers, coinbase transactions and pool data",
        "a secure, well-funded network and miners under little pressure to sell",
        "miner stress, capitulation and forced selling",
        "hash rate is estimated from block times and is noisy over short windows",
        "hashes per second, dollars per terahash or percent",
    ),
    "stock_to_flow": Facts(
        "scarcity, as the ratio of existing supply to new issuance",
        "the current stock divided by the annual flow of newly issued coins",
        "the issuance schedule and circulating supply",
        "scarcity rising, as after each halving",
        "the price running ahead of the model's scarcity value",
        "the model ignores demand and has diverged from price since 2021",
        "years of production",
    ),
    "realized": Facts(
        "the aggregate cost basis of all coins",
        "each coin valued at the price when it last moved on-chain, summed over the supply",
        "UTXO histories and historical prices",
        "the market trading well above the average holder's cost basis",
        "the market near or below the aggregate cost basis, a historical bottom zone",
        "lost coins are counted at their old prices forever",
        "dollars",
    ),
    "institutional_whale": Facts(
        "what large holders and institutions are doing",
        "flows or counts restricted to large entities, compared with total activity",
        "exchange flows, ETF filings and large-transaction monitoring",
        "institutions and whales accumulating",
        "large holders distributing or sending coins to exchanges",
        "a single custodian reshuffle can look like whale selling",
        "dollars, coins or percent",
    ),
    "exchange": Facts(
        "coins moving into and out of exchanges",
        "deposits minus withdrawals across labelled exchange wallets",
        "exchange wallet clustering from on-chain data",
        "coins arriving on exchanges, which often precedes selling",
        "coins leaving exchanges into self-custody, a sign of accumulation",
        "wallet labels are incomplete and change when exchanges rotate addresses",
        "coins per day",
    ),
    "stablecoin": Facts(
        "the dry powder and health of stablecoins",
        "the stablecoin market cap or flows related to the market cap of risk assets",
        "token contracts on Ethereum, Tron and other chains",
        "plenty of buying power waiting on the sidelines",
        "buying power shrinking or stablecoins under redemption pressure",
        "supply on chains that providers do not index is missed",
        "dollars or a ratio",
    ),
    "dex": Facts(
        "trading activity and liquidity on decentralised exchanges",
        "swap volumes, pool reserves and fees per pool, aggregated across protocols",
        "swap events and pool reserves indexed from AMM contracts",
        "deep liquidity and active on-chain trading",
        "thin liquidity and traders returning to centralised venues",
        "MEV bots and wash trades inflate DEX volumes",
        "dollars or percent",
    ),
    "lending": Facts(
        "borrowing demand and risk in lending protocols",
        "borrowed assets divided by supplied assets in a pool, fed into an interest rate curve",
        "lending protocol contracts such as Aave and Compound",
        "strong borrowing demand, usually to lever up",
        "deleveraging and low demand for credit",
        "incentive rewards can hide the real cost of borrowing",
        "percent",
    ),
    "orderbook": Facts(
        "the liquidity resting in the order book and the aggression of market orders",
        "the volume of bids and asks within a price band, or taker buys minus taker sells",
        "level-2 order book snapshots and trade prints",
        "bids dominating and buyers absorbing supply",
        "asks dominating and liquidity thinning below price",
        "spoofed orders appear and vanish before they can be hit",
        "coins or dollars",
    ),
    "dominance": Facts(
        "the share of the total market held by one asset or sector",
        "the asset's or sector's market cap divided by the total crypto market cap",
        "market capitalisation of all tracked assets",
        "capital concentrating in that asset, typical of risk-off phases",
        "capital rotating into the rest of the market",
        "the denominator changes whenever providers list or delist assets",
        "percent",
    ),
    "market_cap": Facts(
        "the size of an asset or of the market",
        "price multiplied by circulating (or fully diluted) supply",
        "prices and supply figures from aggregators",
        "capital flowing into the market",
        "capital leaving the market",
        "illiquid supply makes market cap overstate what could actually be sold",
        "dollars",
    ),
    "correlation": Facts(
        "how closely crypto moves with other assets",
        "the Pearson correlation of daily returns over a rolling window",
        "daily closes of crypto and traditional market series",
        "crypto trading as a macro risk asset",
        "crypto decoupling from traditional markets",
        "correlations are unstable and flip sign within weeks",
        "a coefficient between -1 and 1",
    ),
    "statistical": Facts(
        "how unusual the current reading is in a statistical sense",
        "the distance of the current value from its mean in units of standard deviation",
        "any price or indicator series",
        "an extreme, statistically rare reading",
        "a reading close to its historical norm",
        "return distributions are fat-tailed, so sigma levels understate extremes",
        "standard deviations",
    ),
    "cycle": Facts(
        "where the market sits in its multi-year cycle",
        "the price divided by a long moving average, or a crossover of two long averages",
        "long daily price histories",
        "late-cycle euphoria close to past tops",
        "early-cycle value close to past bottoms",
        "few cycles exist, so the thresholds are fit to a handful of points",
        "a multiple of the moving average",
    ),
    "social": Facts(
        "crowd attention and sentiment",
        "mention counts and sentiment scores from social platforms, normalised to a scale",
        "X, Reddit, Telegram and search engine data",
        "euphoria and crowded attention, a contrarian warning",
        "fear and apathy, a contrarian opportunity",
        "bots and coordinated campaigns distort social counts",
        "index points from 0 to 100",
    ),
    "protocol": Facts(
        "the fundamentals of a DeFi protocol",
        "fees or value locked in the protocol's contracts, related to its token's valuation",
        "protocol contracts and token prices",
        "growing usage that the token price has not yet priced in",
        "a valuation that its cash flows do not support",
        "TVL double-counts assets that are re-deposited across protocols",
        "dollars or a multiple",
    ),
    "nft": Facts(
        "activity and pricing in NFT markets",
        "sales and listings per collection, aggregated across marketplaces",
        "marketplace sale and listing events",
        "collectors buying and demand exceeding listings",
        "holders listing and demand drying up",
        "wash trading for marketplace rewards inflates volumes",
        "ETH or dollars",
    ),
    "token_specific": Facts(
        "token supply events and governance",
        "scheduled unlocks, burns or holder balances from the token contract",
        "token contracts, vesting schedules and governance portals",
        "a supply overhang or rising concentration risk",
        "supply becoming scarcer or more widely held",
        "vesting schedules change and are not always public",
        "tokens or percent",
    ),
}

QUESTION_TEMPLATES: dict[str, tuple[str, ...]] = {
    "definition": (
        "What is the {name} and what does it measure?",
        "Can you explain what the {name} tells a crypto trader?",
        "What does {alias} stand for and how is it used in crypto markets?",
        "In plain terms, what is the {name} for {asset}?",
        "Why do analysts follow the {name} when looking at {asset}?",
        "What information does the {name} add that price alone does not give?",
        "How would you describe the {name} to someone new to {category_text}?",
    ),
    "calculation": (
        "How is the {name} calculated?",
        "What is the formula for the {name}, and what inputs does it need?",
        "Step by step, how do you compute the {name} on a {timeframe} {ticker} chart?",
        "How would you calculate the {name} for {asset} with a {period}-period window?",
        "Which data do you need to reproduce the {name} that {provider} publishes?",
        "How do you compute {alias} from raw {provider} data?",
    ),
    "interpretation": (
        "How should a reading of {level} on the {name} be interpreted for {asset}?",
        "What does a rising {name} mean during {phase}?",
        "What does it signal when the {name} falls sharply on the {timeframe} chart?",
        "How do you read a divergence between the {name} and the {ticker} price?",
        "Is a {name} of {level} bullish or bearish for {asset}?",
        "What did the {name} show around {event}?",
        "How does the {name} typically behave during {phase}?",
    ),
    "parameters": (
        "What lookback period works best for the {name} on {timeframe} charts?",
        "How does changing the {name} period from {period} to {period2} affect its signals?",
        "What are the default settings of the {name}, and when should they be changed?",
        "Which thresholds are commonly used for the {name} on {asset}?",
        "Should the {name} be smoothed, and over how many days?",
    ),
    "signal": (
        "What trading signal does the {name} give when it crosses {level}?",
        "How can the {name} be used to time entries on {ticker}?",
        "How do you build a simple {ticker} strategy around the {name} on the {timeframe} chart?",
        "What does a {name} reading of {level} suggest for a swing trader in {asset}?",
        "How reliable were {name} signals for {ticker} in {year}?",
        "How do you confirm a {name} signal before acting on it?",
    ),
    "comparison": (
        "How does the {name} differ from the {other}?",
        "When is the {name} more useful than the {other}?",
        "Should the {name} and the {other} be combined, and how?",
        "What does the {name} capture that the {other} misses?",
    ),
    "pitfalls": (
        "What are the main limitations of the {name}?",
        "Why can the {name} give false signals on {asset}?",
        "What mistakes do traders make when using the {name}?",
        "How do differences between {provider} and {provider2} affect the {name}?",
        "When should you not trust the {name}?",
    ),
    "history": (
        "How did the {name} behave before {event}?",
        "What did the {name} look like for {asset} in {year}?",
        "Has the {name} called past {ticker} cycle tops and bottoms?",
        "How did the {name} change after {event}?",
    ),
}
TYPES = tuple(QUESTION_TEMPLATES)

OPENINGS = (
    "The {name} measures {measures}.",
    "The {name} ({alias}) is a gauge of {measures}.",
    "In short, the {name} tracks {measures}.",
    "{alias} is shorthand for the {name}, an indicator of {measures}.",
    "Analysts use the {name} to judge {measures}.",
)
SENTENCES: dict[str, tuple[str, ...]] = {
    "formula": (
        "It is computed as {formula}.",
        "Formally it is {formula}; on a {timeframe} chart with a {period}-period window the "
        "calculation is repeated at every candle close.",
        "The calculation is {formula}, usually smoothed over {period} periods.",
        "{provider} computes it as {formula} and publishes it once per {unit_time}.",
    ),
    "data": (
        "The inputs come from {data}.",
        "Data is taken from {data}; {provider} and {provider2} both publish it, with small "
        "differences in methodology.",
        "You need {data}, which {provider} exposes through its API.",
    ),
    "high": (
        "A high or rising reading points to {high}.",
        "Readings above {level} have historically signalled {high}.",
        "When it climbs quickly, as during {phase}, it reflects {high}.",
        "On {ticker}, spikes above {level} around {event} reflected {high}.",
    ),
    "low": (
        "A low or falling reading points to {low}.",
        "Readings below {level2} have usually coincided with {low}.",
        "During {phase} it tends to sink, reflecting {low}.",
        "In {year} it spent weeks at depressed levels, a sign of {low}.",
    ),
    "example": (
        "For example, on the {timeframe} {ticker} chart a move from {level2} to {level} within "
        "{days} days preceded a {pct}% move in price.",
        "As an illustration, in {year} the value for {asset} was near {level} while price traded "
        "around ${price:,}.",
        "A worked example: with a {period}-period window and {ticker} at ${price:,}, a reading "
        "of {level} means the current value sits {pct}% away from its average.",
        "Around {event}, {ticker} printed a reading of {level} on {venue} before a {pct}% swing.",
    ),
    "pitfall": (
        "A known weakness is that {pitfall}.",
        "Be careful: {pitfall}.",
        "It should be confirmed with other data because {pitfall}.",
        "Backtests on {ticker} show that {pitfall}, so thresholds need re-fitting each cycle.",
    ),
    "usage": (
        "Traders combine it with the {other} to filter false signals.",
        "It works best as context on {timeframe} charts rather than as a standalone trigger.",
        "Most desks watch it alongside the {other} and volume before adding exposure.",
        "A common rule is to act only when it stays beyond {level} for at least {days} days.",
        "Risk managers on {venue} use it to size positions rather than to pick direction.",
    ),
    "unit": (
        "It is expressed in {unit}.",
        "Values are quoted in {unit} and are comparable across assets only after normalising.",
    ),
}
# Which sentence kinds an answer of each question type draws on (openings come first).
ANSWER_PLAN: dict[str, tuple[str, ...]] = {
    "definition": ("data", "high", "low", "unit", "usage"),
    "calculation": ("formula", "data", "example", "unit"),
    "interpretation": ("high", "low", "example", "pitfall", "usage"),
    "parameters": ("formula", "usage", "example", "pitfall"),
    "signal": ("high", "low", "usage", "example", "pitfall"),
    "comparison": ("formula", "usage", "high", "pitfall"),
    "pitfalls": ("pitfall", "data", "usage", "example"),
    "history": ("example", "high", "low", "pitfall"),
}
EVENT_NOTES = {
    "the March 2020 crash": "when pandemic panic cut BTC in half within two days",
    "the May 2021 deleveraging": "when forced selling wiped out billions of long positions",
    "the Terra/LUNA collapse": "when the UST peg broke and LUNA went to zero within a week",
    "the FTX bankruptcy": "when withdrawals froze and trust in centralised venues cratered",
    "the 2024 halving": "when the block subsidy fell from 6.25 to 3.125 BTC",
    "the January 2024 spot ETF launch": "when US spot ETFs opened the door to advisers",
    "the November 2021 all-time high": "when retail euphoria peaked near $69,000",
    "the June 2022 Celsius freeze": "when a large lender halted withdrawals and sold collateral",
    "the 2018 bear market bottom": "when BTC bottomed near $3,200 after an 84% drawdown",
    "the August 2024 yen carry unwind": "when a surprise Japanese rate hike forced deleveraging",
}
ASSET_NOTES = {
    "BTC": "Bitcoin's deep spot and derivatives markets make its readings the most reliable",
    "ETH": "Ethereum's staking and burn mechanics change how supply-based readings behave",
    "SOL": "Solana's fast blocks and bursts of memecoin trading produce noisy readings",
    "BNB": "BNB is dominated by one exchange, so venue concentration skews the data",
    "XRP": "XRP trades heavily on Asian venues, so regional sessions matter",
    "ADA": "Cardano's large staked share keeps much of the supply inactive",
    "AVAX": "Avalanche's subnets split activity across several chains",
    "LINK": "Chainlink token flows are tied to node operator staking and unlocks",
    "DOGE": "Dogecoin is retail- and meme-driven, so sentiment overwhelms fundamentals",
    "POL": "Polygon's token migration from MATIC breaks long histories",
    "ARB": "Arbitrum's scheduled unlocks create predictable supply shocks",
    "LTC": "Litecoin's halvings mirror Bitcoin's on a faster schedule",
}
COLOR: tuple[str, ...] = (
    "Macro liquidity matters too: a rising dollar index and higher real yields tend to weigh "
    "on every crypto indicator at once.",
    "Weekend sessions are thin, so moves printed on Saturday and Sunday deserve less weight.",
    "Survivorship bias creeps into backtests that only cover assets still listed today.",
    "Revised historical data can introduce look-ahead bias when a backtest uses the final "
    "series instead of what was known at the time.",
    "Position sizing should assume the indicator will be wrong roughly a third of the time.",
    "Exchange outages during volatile hours leave gaps that interpolation hides.",
    "Options expiries on the last Friday of the month can pin price and distort readings.",
    "Regulatory headlines, such as SEC enforcement actions, override technical readings for days.",
    "Miners, market makers and funds each react to the same reading with different horizons.",
    "Stablecoin inflows to exchanges often lead the reading by a few days.",
    "Cross-checking with a second data vendor catches most methodology artefacts.",
    "Alerts set at fixed thresholds should be reviewed after every halving cycle.",
    "On lower timeframes the signal-to-noise ratio drops sharply, so most analysts step up "
    "to daily or weekly data.",
    "Tax-loss harvesting around year end regularly distorts December readings.",
    "Large OTC trades never touch the order book and are invisible to exchange-based data.",
    "A dashboard that overlays price, the indicator and its moving average makes regime "
    "changes easy to spot.",
)
LEADS: dict[str, tuple[str, ...]] = {
    "definition": (
        "Put simply, the {name} answers one question: what is happening with {measures}?",
        "The {name} condenses {data} into a single number about {measures}.",
    ),
    "calculation": (
        "Step 1: collect {data}. Step 2: apply {formula}. Step 3: smooth the result over "
        "{period} periods.",
        "Start from {data}, then compute {formula} for each {unit_time}.",
    ),
    "interpretation": (
        "A reading of {level} is {judgement} for {asset}, and context decides how much it matters.",
        "The direction of the {name} matters more than its level: a {judgement} reading that is "
        "still rising tells a different story from one that is rolling over.",
    ),
    "parameters": (
        "The usual setting is {period} periods on {timeframe} candles; a {period2}-period window "
        "reacts {speed} but changes how often it crosses its thresholds.",
        "Defaults exist for convenience: {period} periods is common, yet {ticker} traders on "
        "{timeframe} charts often prefer {period2}.",
    ),
    "signal": (
        "The classic setup is to enter {ticker} when the {name} crosses {level} and to exit when "
        "it falls back below {level2}, with a stop under the last swing low.",
        "As a trigger the {name} is blunt; as a filter that keeps you out of bad {ticker} trades "
        "it is far more useful.",
    ),
    "comparison": (
        "The {other} looks at {other_measures}, whereas the {name} focuses on {measures}.",
        "Both belong in the toolbox: the {other} covers {other_measures}, while the {name} adds "
        "a view of {measures}.",
    ),
    "pitfalls": (
        "The biggest trap is treating the {name} as a standalone signal: {pitfall}.",
        "Several problems recur with the {name}, starting with the fact that {pitfall}.",
    ),
    "history": (
        "Around {event}, {event_note}, the {name} moved to {judgement} levels.",
        "History offers a mixed record: in {year} the {name} flagged the turn early, but around "
        "{event} it lagged badly.",
    ),
}
JUDGEMENTS = ("elevated", "neutral", "depressed", "extreme", "unusually high", "unusually low")
PARAPHRASES = (
    ("What is", "What's"),
    ("How is", "How exactly is"),
    ("How do you", "How can you"),
    ("What does", "What exactly does"),
    ("?", ", in practice?"),
)


def _rng(seed: int, *parts: object) -> random.Random:
    """A random stream that depends only on ``seed`` and ``parts`` (stable across runs)."""
    key = "\x1f".join(map(str, (seed, *parts))).encode()
    return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))


def _slots(rng: random.Random, indicator: Indicator, peers: Sequence[Indicator]) -> dict[str, Any]:
    asset, ticker = rng.choice(ASSETS)
    period = rng.choice((7, 9, 10, 14, 20, 21, 26, 30, 50, 90, 100, 200, 365))
    level = round(rng.uniform(0.2, 95.0), rng.choice((0, 1, 2)))
    level2 = round(level * rng.uniform(0.1, 0.8), 2)
    others = [p for p in peers if p.id != indicator.id] or [indicator]
    other = rng.choice(others)
    event = rng.choice(EVENTS)
    provider, provider2 = rng.sample(PROVIDERS, 2)
    return {
        "name": indicator.name,
        "alias": rng.choice(indicator.aliases) if indicator.aliases else indicator.name,
        "asset": asset,
        "ticker": ticker,
        "timeframe": rng.choice(TIMEFRAMES),
        "period": period,
        "period2": rng.choice([p for p in (5, 10, 14, 21, 50, 100, 200) if p != period]),
        "level": level,
        "level2": level2,
        "phase": rng.choice(PHASES),
        "event": event,
        "event_note": EVENT_NOTES[event],
        "year": rng.choice(YEARS),
        "venue": rng.choice(VENUES),
        "provider": provider,
        "provider2": provider2,
        "other": other.name,
        "other_measures": FACTS.get(other.category, _GENERIC).measures,
        "days": rng.choice((2, 3, 5, 7, 10, 14, 30)),
        "pct": rng.choice((4, 6, 8, 11, 15, 18, 22, 27, 35, 48)),
        "price": rng.randrange(20, 110_000, 10),
        "unit_time": rng.choice(("hour", "day", "block", "funding interval")),
        "category_text": indicator.category.replace("_", " ") + " analysis",
        "judgement": rng.choice(JUDGEMENTS),
        "speed": rng.choice(("faster", "more slowly")),
    }


def _pair(
    rng: random.Random, indicator: Indicator, peers: Sequence[Indicator], qtype: str
) -> tuple[str, str]:
    facts = FACTS.get(indicator.category, _GENERIC)
    slots = {**facts.__dict__, **_slots(rng, indicator, peers)}
    question = rng.choice(QUESTION_TEMPLATES[qtype]).format(**slots)
    kinds = list(ANSWER_PLAN[qtype])
    rng.shuffle(kinds)
    sentences = [rng.choice(LEADS[qtype]).format(**slots)]
    if rng.random() < 0.35:
        sentences.insert(0, rng.choice(OPENINGS).format(**slots))
    sentences += [
        rng.choice(SENTENCES[kind]).format(**slots) for kind in kinds[: rng.randint(1, 3)]
    ]
    if rng.random() < 0.5:
        sentences.append(ASSET_NOTES[slots["ticker"]] + ".")
    sentences += rng.sample(COLOR, rng.randint(0, 2))
    return question, " ".join(sentences)


def _paraphrase(rng: random.Random, question: str, answer: str) -> tuple[str, str]:
    """A near duplicate: the question reworded, the answer nearly the same."""
    for old, new in rng.sample(PARAPHRASES, len(PARAPHRASES)):
        if old in question:
            question = question.replace(old, new, 1)
            break
    else:
        question = "Quick question: " + question
    return question, answer.replace(". ", "; ", 1)


def pairs_for(
    indicator: Indicator,
    count: int,
    *,
    seed: int = 0,
    peers: Sequence[Indicator] = (),
    paraphrase_rate: float = 0.01,
    tag: str = "",
) -> list[dict[str, Any]]:
    """``count`` distinct pairs about ``indicator`` (distinct questions and answers)."""
    rng = _rng(seed, indicator.id, tag)
    seen_q: set[str] = set()
    seen_a: set[str] = set()
    out: list[dict[str, Any]] = []
    attempts = 0
    while len(out) < count:
        attempts += 1
        if attempts > count * 50:
            raise RuntimeError(f"cannot make {count} distinct pairs for {indicator.id}")
        if out and rng.random() < paraphrase_rate:
            source = rng.choice(out)
            question, answer = _paraphrase(rng, source["question"], source["answer"])
            qtype = source["type"]
        else:
            qtype = rng.choice(TYPES)
            question, answer = _pair(rng, indicator, peers, qtype)
        if question in seen_q or answer in seen_a:
            continue
        seen_q.add(question)
        seen_a.add(answer)
        number = len(out) + 1
        out.append(
            {
                "id": f"{indicator.id}{'-' + tag if tag else ''}-{number:03d}",
                "question": question,
                "answer": answer,
                "type": qtype,
                "difficulty": rng.choice(DIFFICULTIES),
                "tags": [indicator.category.replace("_", "-"), qtype],
                "sources": rng.sample(SOURCES, rng.randint(1, 2)),
            }
        )
    return out


def _split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def indicators(files: int) -> list[Indicator]:
    """The catalog indicators the corpus files cover, in catalog order (at most 227)."""
    catalog = load_catalog()
    if files > len(catalog.indicators):
        raise ValueError(f"at most {len(catalog.indicators)} files (one per indicator)")
    return list(catalog.indicators[:files])


def _peers(indicator: Indicator) -> list[Indicator]:
    catalog = load_catalog()
    return [i for i in catalog.indicators if i.category == indicator.category]


def corpus_files(
    total: int, *, files: int = 215, seed: int = 0
) -> Iterator[tuple[Indicator, list[dict[str, Any]]]]:
    """One (indicator, pairs) per file; the pairs of all files add up to ``total``."""
    for indicator, count in zip(indicators(files), _split(total, files), strict=True):
        yield indicator, pairs_for(indicator, count, seed=seed, peers=_peers(indicator))


def generate(total: int, *, files: int = 215, seed: int = 0) -> list[dict[str, Any]]:
    """All pairs of the corpus as one list, each with its ``indicator`` id."""
    return [
        {**pair, "indicator": indicator.id}
        for indicator, pairs in corpus_files(total, files=files, seed=seed)
        for pair in pairs
    ]


def envelope(indicator: Indicator, pairs: list[dict[str, Any]]) -> bytes:
    """A deliverable file's bytes, as the agent writes it."""
    session = load_catalog().session(indicator.session)
    body = {
        "indicator": indicator.id,
        "indicator_name": indicator.name,
        "session": indicator.session,
        "category": session.theme,
        "qa_pairs": pairs,
    }
    return json.dumps(body, indent=2, ensure_ascii=False).encode("utf-8")


def file_path(root: Path, indicator: Indicator, suffix: str = "", agent: str = AGENT) -> Path:
    name = f"{indicator.id}{'_' + suffix if suffix else ''}_qa_pairs.json"
    return root / "outbox" / agent / f"session_{indicator.session:02d}" / name


def drop_atomically(path: Path, data: bytes) -> None:
    """Write to a dot-file beside ``path`` and rename it into place (what agents should do)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def write_corpus(
    root: Path, total: int, *, files: int = 215, seed: int = 0, agent: str = AGENT
) -> list[Path]:
    """Write the corpus under ``root/outbox/<agent>/session_NN/``; returns the paths."""
    written = []
    for indicator, pairs in corpus_files(total, files=files, seed=seed):
        path = file_path(root, indicator, agent=agent)
        drop_atomically(path, envelope(indicator, pairs))
        written.append(path)
    return written


def queries(count: int, *, seed: int = 0) -> list[str]:
    """Search queries as a user types them: fresh questions, names, aliases and phrases."""
    catalog = load_catalog()
    rng = _rng(seed, "queries")
    out: list[str] = []
    for n in range(count):
        indicator = rng.choice(catalog.indicators)
        kind = n % 4
        if kind == 0:  # a question that is not in the corpus verbatim
            qtype = rng.choice(TYPES)
            out.append(_pair(rng, indicator, _peers(indicator), qtype)[0])
        elif kind == 1:  # a bare name or alias, as typed into a search box
            out.append(rng.choice((indicator.name, *indicator.aliases)))
        elif kind == 2:
            out.append(f"how is {indicator.name.lower()} calculated")
        else:
            facts = FACTS.get(indicator.category, _GENERIC)
            out.append(
                f"{indicator.name} {rng.choice(('signal', 'meaning', 'limitations'))}"
                f" {facts.high.split(',')[0]}"
            )
    return out
