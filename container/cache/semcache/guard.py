"""What must match *literally* before two prompts may share an answer by embedding similarity.

An embedding puts "Convert Celsius to Fahrenheit" and "Convert Fahrenheit to Celsius" at 0.99, "three" and
"five" close together, "including" next to "except" and ``--force`` next to ``--Force``. The embedding is
good at *meaning* and blind to these small, answer-changing differences, so two checks run before it:

1. :func:`structural_guard` reduces a prompt to its answer-changing literals: numbers (digits and spelled out,
   ordinals, "twice", "a dozen"), dates (month and weekday names, "today"/"tomorrow"), code identifiers (case
   kept: backticked or quoted text, CLI flags, ``snake_case``, ``camelCase``, dotted names, paths), proper
   nouns, negations, and words from contrast classes (order, direction, inclusion, comparison, format, tone,
   length, units, programming and natural languages …). It is part of the semantic *scope*: a near-miss
   that differs in any of them is in another scope and can never hit.
2. :func:`same_order` is the second stage, run on a candidate above the threshold: the content words both
   prompts share must appear in the same order (A→B vs B→A swaps them).

Both err on the side of a miss: a paraphrase that changes one of these literals costs one model call, a
near-miss that slips through costs a wrong answer.
"""

from __future__ import annotations

import hashlib
import json
import re

_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000,
    "million": 10**6, "billion": 10**9, "trillion": 10**12, "dozen": 12, "couple": 2, "pair": 2,
    "single": 1, "twice": 2, "thrice": 3, "once": 1, "half": 0.5, "quarter": 0.25, "double": 2, "triple": 3,
}  # fmt: skip
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "twentieth": 20, "hundredth": 100, "last": -1,
    "penultimate": -2,
}  # fmt: skip
_MONTHS = {
    m: i + 1
    for i, names in enumerate(
        [("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",), ("june", "jun"),
         ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"), ("october", "oct"),
         ("november", "nov"), ("december", "dec")]
    )
    for m in names
}  # fmt: skip
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "today", "tomorrow",
         "yesterday", "tonight", "weekend", "weekday", "morning", "evening", "night", "noon", "midnight")  # fmt: skip
_NEGATION = {"not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "cannot", "without", "non"}

# Contrast classes: each word maps to "class:member"; two prompts must carry the same members.
_CLASSES: dict[str, tuple[str, ...]] = {
    "order:asc": ("ascending", "increasing", "asc", "smallest-to-largest", "oldest-first", "alphabetical"),
    "order:desc": ("descending", "decreasing", "desc", "reverse", "reversed", "backwards", "backward",
                   "largest-to-smallest", "newest-first"),
    "dir:from": ("from",),
    "dir:into": ("into", "onto"),
    "dir:between": ("between",),
    "dir:vs": ("vs", "versus"),
    "incl:except": ("except", "excluding", "exclude", "excludes", "excluded", "exclusive", "besides", "apart", "minus",
                    "omit", "omitting", "skip", "skipping", "ignore", "ignoring", "but"),
    "incl:including": ("including", "include", "includes", "included", "inclusive", "plus", "also", "both"),
    "incl:only": ("only", "just", "solely", "exclusively"),
    "quant:all": ("all", "every", "each", "entire", "whole", "always"),
    "quant:some": ("several", "few", "sometimes", "often", "rarely", "seldom", "usually"),
    "io:out": ("out", "outside", "outward", "outgoing", "outbound"),
    "cmp:more": ("more", "greater", "larger", "bigger", "higher", "above", "over", "exceed", "exceeds",
                 "max", "maximum", "largest", "biggest", "highest", "longest", "heaviest", "fastest", "oldest",
                 "tallest", "richest", "better", "best", "most", "top", "upper", "after", "later", "newer", "newest",
                 "increase", "raise", "faster", "older", "heavier", "taller", "stronger", "strongest", "warmer",
                 "hotter", "hottest", "richer", "deeper", "deepest", "wider", "widest", "outer"),
    "cmp:less": ("less", "fewer", "smaller", "lower", "below", "under", "beneath", "min", "minimum",
                 "smallest", "lowest", "shortest", "lightest", "slowest", "youngest", "worse", "worst", "least",
                 "bottom", "before", "earlier", "older-first", "decrease", "reduce", "slower", "younger",
                 "lighter", "shorter", "weaker", "weakest", "colder", "coldest", "cooler", "poorer",
                 "shallower", "narrower", "inner", "prior"),
    "pos:first": ("start", "beginning", "begin", "head", "leading", "prefix", "front"),
    "pos:last": ("end", "ending", "tail", "trailing", "suffix", "back", "final"),
    "side:left": ("left", "west", "western", "north", "northern", "up", "upward", "upwards", "top-down"),
    "side:right": ("right", "east", "eastern", "south", "southern", "down", "downward", "downwards"),
    "act:add": ("add", "insert", "append", "create", "enable", "open", "push", "upload", "import",
                "encrypt", "encode", "compress", "serialize", "install", "buy", "join", "merge", "lock",
                "start", "connect", "mount", "zip", "attach", "expand", "grant", "allow", "accept",
                "subscribe", "follow", "login", "sign-in", "on", "true", "yes", "win", "gain", "profit"),
    "act:remove": ("remove", "delete", "drop", "disable", "close", "pull", "download", "export", "decrypt",
                   "decode", "decompress", "deserialize", "uninstall", "sell", "leave", "split", "unlock",
                   "stop", "disconnect", "unmount", "unzip", "detach", "collapse", "revoke", "deny",
                   "reject", "unsubscribe", "unfollow", "logout", "sign-out", "off", "false", "lose", "loss"),
    "tone:formal": ("formal", "formally", "professional", "professionally", "polite", "politely", "serious",
                    "academic", "business"),
    "tone:casual": ("informal", "casual", "casually", "friendly", "slang", "conversational"),
    "tone:funny": ("funny", "humorous", "playful", "witty", "silly", "joke", "jokes", "hilarious"),
    "tone:happy": ("cheerful", "happy", "excited", "upbeat", "joyful", "enthusiastic", "optimistic"),
    "tone:sad": ("sad", "melancholy", "gloomy", "somber", "pessimistic", "depressing"),
    "tone:angry": ("angry", "angrily", "rude", "rudely", "aggressive", "harsh", "furious"),
    "tone:sarcastic": ("sarcastic", "sarcastically", "ironic", "snarky"),
    "tone:simple": ("simple", "simply", "child", "kid", "kids", "beginner", "beginners", "eli5", "layman",
                    "plain", "easy", "five-year-old"),
    "tone:expert": ("expert", "technical", "technically", "advanced", "detailed", "in-depth", "rigorous",
                    "thorough", "thoroughly", "comprehensive"),
    "len:short": ("short", "brief", "briefly", "concise", "concisely", "summary", "summarize", "summarise",
                  "tl;dr", "tldr", "one-line", "one-liner", "quick", "quickly", "succinct"),
    "len:long": ("long", "lengthy", "verbose", "elaborate", "extended", "essay"),
    "fmt:json": ("json",),
    "fmt:yaml": ("yaml", "yml"),
    "fmt:xml": ("xml",),
    "fmt:csv": ("csv", "tsv", "spreadsheet"),
    "fmt:table": ("table", "tabular", "grid", "matrix"),
    "fmt:list": ("list", "bullet", "bullets", "bulleted", "numbered", "points", "enumerate", "checklist"),
    "fmt:markdown": ("markdown", "md"),
    "fmt:html": ("html",),
    "fmt:code": ("code", "snippet", "script", "function", "regex", "query", "class", "program"),
    "fmt:prose": ("paragraph", "paragraphs", "prose", "sentence", "sentences", "story", "narrative"),
    "fmt:poem": ("poem", "haiku", "limerick", "sonnet", "rhyme", "rhyming", "verse", "song", "lyrics", "rap"),
    "fmt:letter": ("email", "letter", "memo", "tweet", "post", "message", "text", "slogan", "headline", "title"),
    "fmt:diagram": ("diagram", "chart", "graph", "plot", "mermaid", "ascii"),
    "fmt:steps": ("steps", "step-by-step", "walkthrough", "tutorial", "guide", "instructions"),
    "fmt:example": ("example", "examples", "sample", "samples", "demo"),
    "fmt:compare": ("compare", "comparison", "difference", "differences", "contrast", "pros", "cons"),
    "fmt:explain": ("why", "reason", "reasons", "because"),
    "fmt:define": ("define", "definition", "meaning", "means"),
    "fmt:translate": ("translate", "translation", "translated"),
    "fmt:who": ("who", "whom", "whose"),
    "fmt:when": ("when", "date", "year", "time"),
    "fmt:where": ("where", "location", "located"),
}  # fmt: skip


def _split(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_CLASS_OF = {w: name for name, words in _CLASSES.items() for w in words}
# Units, currencies, programming and natural languages: the member itself is the literal.
_NAMED = _split(
    "celsius fahrenheit kelvin centigrade km kilometer kilometers kilometre kilometres mile miles meter meters "
    "metre metres cm centimeter centimeters mm inch inches foot feet ft yard yards kg kilogram kilograms gram grams "
    "g lb lbs pound pounds ounce ounces oz ton tons tonne tonnes liter liters litre litres ml gallon gallons quart "
    "quarts pint pints cup cups tablespoon tablespoons teaspoon teaspoons mph kph kmh knots second seconds minute "
    "minutes hour hours day days week weeks month months year years decade decades century centuries millisecond "
    "milliseconds byte bytes kb mb gb tb bit bits kib mib gib hz khz mhz ghz watt watts kw kwh volt volts amp amps "
    "joule joules calorie calories kcal acre acres hectare hectares degree degrees radian radians percent "
    "percentage dollar dollars usd euro euros eur yen jpy gbp sterling franc francs yuan rmb rupee rupees inr peso "
    "pesos bitcoin btc python java javascript js typescript ts c c++ cpp c# csharp go golang rust ruby php perl "
    "swift kotlin scala haskell elixir erlang lua r matlab julia dart bash sh zsh powershell sql mysql postgres "
    "postgresql sqlite mongodb redis html css sass react vue angular django flask fastapi rails spring node nodejs "
    "deno numpy pandas pytorch tensorflow docker kubernetes terraform ansible git linux windows macos ios android "
    "english french spanish german italian portuguese dutch russian chinese mandarin cantonese japanese korean "
    "arabic hindi bengali urdu turkish greek latin hebrew polish swedish norwegian danish finnish czech ukrainian "
    "vietnamese thai indonesian malay swahili persian farsi male female man woman men women boy girl husband wife "
    "father mother son daughter brother sister cat dog teacher student landlord tenant buyer seller defendant "
    "plaintiff employer employee interviewer interviewee parent child children doctor patient manager customer "
    "client server host guest driver passenger author reader sender receiver caller callee parent-child student- "
    "teacher key keys value values row rows column columns input output request response source target car bike "
    "bicycle truck motorcycle bus train plane boat ship solar lunar hidden unhide visible invisible odd even "
    "positive negative horizontal vertical upper lower uppercase lowercase public private local global static "
    "dynamic sync async synchronous asynchronous "
)
_NAMED_SET = frozenset(_NAMED)
_STOP = frozenset(
    _split(
        "a an the is are was were be been being am do does did doing have has had having i me my we our you "
        "your it its "
        "they them their he him his she her this that these those there here what which how can could would "
        "should will "
        "shall may might must please tell give show explain describe write make let lets about of in on at for with by "
        "to as and or if then so than too very really also just some any get got need want like know think i'm it's "
        "what's how's can't don't doesn't isn't aren't kindly quick quickly help someone something anything thing "
        "things way ways using use used "
    )
)
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'+#-]*")
_NUMBER = re.compile(r"(?<![A-Za-z_])[-+]?\d[\d,]*(?:\.\d+)?(?:st|nd|rd|th)?")
_QUOTED = re.compile(r"`([^`]+)`|\"([^\"]+)\"|'([^'\s][^']*[^'\s])'")
_IDENT = re.compile(
    r"(?<![\w-])(?:--?[A-Za-z0-9][\w-]*"  # CLI flags: -f, --force, -R
    r"|[A-Za-z_][\w]*(?:[./:]{1,2}[\w]+)+(?:\(\))?"  # dotted / path / module names: os.path, a::b, file.py
    r"|[A-Za-z]*[a-z][A-Z][A-Za-z0-9]*"  # camelCase
    r"|[A-Za-z0-9]*_[A-Za-z0-9_]+"  # snake_case
    r"|[A-Za-z_]\w*\(\)"  # call()
    r"|[A-Z][A-Z0-9]{1,}[a-z]*"  # ACRONYM, HTTP2, GETs
    r"|[a-z]+[0-9]+[A-Za-z0-9]*"  # utf8, sha256, ipv6
    r")"
)
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\n]\s*)([A-Z][a-z]+)")


def _number_value(token: str) -> str:
    """A number in digits as the guard compares it: ``1,000`` = ``1000``, ``2.0`` = ``2``; one with an ordinal
    suffix is a position, ``5th`` = ``#5`` as ``fifth`` is, never the count ``5`` ("the 5th largest city" and
    "the 5 largest cities" embed at 0.97 and ask different things)."""
    ordinal = token[-2:].lower() in ("st", "nd", "rd", "th")
    t = token.lower().rstrip("stndrh") if ordinal else token
    t = t.replace(",", "")
    try:
        v = float(t)
    except ValueError:
        return token
    value = repr(int(v)) if v == int(v) else repr(v)
    return f"#{value}" if ordinal else value


def numbers(text: str) -> list[str]:
    """Every number in ``text`` in order, digits and words alike (``three`` = ``3``, ``5th`` = ``fifth`` = ``#5``;
    "twenty five" = 20, 5 as written: both spellings of one prompt list the same values only when written the same
    way)."""
    out: list[str] = []
    for m in re.finditer(r"[A-Za-z][A-Za-z-]*|" + _NUMBER.pattern, text):
        tok = m.group(0)
        low = tok.lower()
        if tok[0].isdigit() or (tok[0] in "+-" and len(tok) > 1 and tok[1].isdigit()):
            out.append(_number_value(tok))
        elif low in _NUMBER_WORDS:
            out.append(repr(_NUMBER_WORDS[low]))
        elif low in _ORDINALS:
            out.append(f"#{_ORDINALS[low]}")
        elif "-" in low and all(p in _NUMBER_WORDS for p in low.split("-")):
            out.append(repr(sum(_NUMBER_WORDS[p] for p in low.split("-"))))
    return out


def identifiers(text: str) -> list[str]:
    """Quoted text and code-shaped tokens, case kept: ``-r`` is not ``-R``, ``getUser`` is not ``getUsers``."""
    found = [next(g for g in m.groups() if g) for m in _QUOTED.finditer(text)]
    found += [m.group(0) for m in _IDENT.finditer(text)]
    return sorted(found)


def proper_nouns(text: str) -> list[str]:
    """Capitalised words that do not start a sentence (France, Tokyo, Shakespeare), lower-cased."""
    starts = {m.start(1) for m in _SENTENCE_START.finditer(text)}
    out = []
    for m in re.finditer(r"\b[A-Z][a-z]+\b", text):
        if m.start() in starts:
            continue
        w = m.group(0).lower()
        if w not in _STOP and w not in _CLASS_OF:
            out.append(w)
    return sorted(out)


def markers(text: str) -> list[str]:
    """Negations, dates, contrast-class members and named units/languages, as a sorted multiset."""
    out: list[str] = []
    low = text.lower().replace("n't", " not")
    for w in re.findall(r"[a-z][a-z0-9+#;-]*", low):
        if w in _NEGATION:
            out.append("neg")
        elif w in _MONTHS and (w != "may" or re.search(r"\bmay\s+\d", low)):
            out.append(f"month:{_MONTHS[w]}")
        elif w in _DAYS or (w.endswith("s") and w[:-1] in _DAYS):
            out.append(f"day:{w.removesuffix('s') if w not in _DAYS else w}")
        elif w in _CLASS_OF:
            out.append(_CLASS_OF[w])
        elif w in _NAMED_SET or (w.endswith("s") and w[:-1] in _NAMED_SET):
            out.append(f"named:{w[:-1] if w.endswith('s') and w[:-1] in _NAMED_SET else w}")
    return sorted(set(out))


def structural_guard(text: str) -> str:
    """The literals of ``text`` that two prompts must share before their embeddings are compared."""
    return json.dumps(
        [numbers(text), identifiers(text), proper_nouns(text), markers(text)], separators=(",", ":"), sort_keys=True
    )


def _stem(w: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            return w[: -len(suffix)]
    return w


_TOKEN = re.compile(r"-{0,2}[A-Za-z0-9_][\w.'+#/-]*")
_NEG_PREFIX = ("un", "in", "il", "im", "ir", "dis", "non-", "non", "de", "anti-", "anti", "mis")


def _h8(w: str) -> str:
    return hashlib.sha256(w.encode()).hexdigest()[:8]


def content_words(text: str) -> list[str]:
    """The prompt's content words in order (lower-cased and lightly stemmed, code-shaped tokens kept as written,
    stop words dropped), each as a short hash ``word`` or ``word>base`` where ``base`` is the word without a
    negating prefix (``unsafe>safe``): what :func:`same_order` compares and what is stored with an entry
    (hashes, never the words)."""
    out = []
    tokens: list[tuple[str, bool]] = []
    for m in _TOKEN.finditer(text):
        raw = m.group(0).rstrip(".'")
        if _IDENT.fullmatch(raw):
            tokens.append((raw, True))
        else:  # thread-safe → thread, safe: the prefix check below sees "unsafe" in "thread-unsafe"
            tokens += [(part.lower(), False) for part in raw.split("-") if part]
    for w, code in tokens:
        if not code and (w in _STOP or len(w) < 2):
            continue
        stem = w if code else _stem(w)
        feature = _h8(stem)
        if not code:
            for prefix in _NEG_PREFIX:
                if w.startswith(prefix) and len(w) - len(prefix) >= 4:
                    feature += ">" + _h8(_stem(w[len(prefix) :]))
                    break
        out.append(feature)
    return out


def same_order(a: list[str], b: list[str]) -> bool:
    """Second stage: the two prompts are compatible when the words they share appear in the same order in both
    (A→B vs B→A swaps them) and neither uses the negated form of a word the other uses (safe / unsafe,
    valid / invalid, advantages / disadvantages)."""
    words_a = {f.split(">")[0] for f in a}
    words_b = {f.split(">")[0] for f in b}
    for mine, theirs in ((a, words_b - words_a), (b, words_a - words_b)):
        for f in mine:
            if ">" in f and f.split(">")[1] in theirs:
                return False
    shared = words_a & words_b
    seq_a = [f.split(">")[0] for f in a if f.split(">")[0] in shared]
    seq_b = [f.split(">")[0] for f in b if f.split(">")[0] in shared]
    return seq_a == seq_b
