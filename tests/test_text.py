"""Text front-end: golden normalization, lexicon and eSpeak G2P, pauses, symbols, prompts."""

from pathlib import Path

import pytest

from tts import text
from tts.config import ConfigError, build
from tts.text import (PAD_ID, SIL, SP, SYMBOLS, TextConfig, UnspeakableTextError, normalize,
                      phonemize, phonemize_words, to_ids, to_symbols, word_phonemes)

PROMPTS = Path(__file__).parents[1] / "tts" / "prompts.txt"

GOLDEN = [
    # numbers, years (keithito/tacotron style), decades
    ("In 1800 the town was small.", "in eighteen hundred the town was small."),
    ("It happened in 1999.", "it happened in nineteen ninety-nine."),
    ("By 2005 it was gone.", "by two thousand five it was gone."),
    ("Since 2010, and 1905.", "since twenty ten, and nineteen oh five."),
    ("We counted 1,234,567 stars.", "we counted one million two hundred thirty-four thousand "
                                     "five hundred sixty-seven stars."),
    ("Only 42 left.", "only forty-two left."),
    ("Pi is about 3.14.", "pi is about three point one four."),
    ("Music of the 1960s and '80s", "music of the nineteen sixties and eighties"),
    ("It fell to -5 overnight.", "it fell to minus five overnight."),
    ("Read pages 5-10.", "read pages five to ten."),
    # ordinals
    ("She came 1st, he 22nd, they 103rd.", "she came first, he twenty-second, they one hundred "
                                            "third."),
    # currency and percentages
    ("It costs $3.50.", "it costs three dollars and fifty cents."),
    ("Pay £20 now.", "pay twenty pounds now."),
    ("Only $1 or $0.99!", "only one dollar or ninety-nine cents!"),
    ("A $3.5 million deal", "a three point five million dollars deal"),
    ("Costs rose 12% and then 3.5%.", "costs rose twelve percent and then three point five "
                                       "percent."),
    ("That is €15.", "that is fifteen euros."),
    # times and dates
    ("Meet at 10:30.", "meet at ten thirty."),
    ("Leave at 9:05 or 6:00.", "leave at nine oh five or six o'clock."),
    ("Wake at 7 a.m. tomorrow", "wake at seven A M tomorrow"),
    ("The show is at 8:15pm.", "the show is at eight fifteen P M."),
    ("On January 3, 2005 we left.", "on january third, two thousand five we left."),
    ("Born on 4 July 1776.", "born on the fourth of july seventeen seventy-six."),
    ("Due 3/14/2015.", "due march fourteenth, twenty fifteen."),
    ("Stamped 2024-01-15.", "stamped january fifteenth, twenty twenty-four."),
    # abbreviations
    ("Mr. Smith and Mrs. Jones saw Dr. Lee.", "mister smith and missus jones saw doctor lee."),
    ("We met on St. Patrick's Day.", "we met on saint patrick's day."),
    ("He lives on Elm St. The door is red.", "he lives on elm street. the door is red."),
    ("Apples, pears, etc. are fruit.", "apples, pears, et cetera are fruit."),
    ("Cats vs. dogs", "cats versus dogs"),
    ("Fruit, e.g. plums", "fruit, for example plums"),
    ("Call No. 5 or #6.", "call number five or number six."),
    # initialisms, acronyms, Roman numerals, units, symbols
    ("The FBI called.", "the F B I called."),
    ("NASA and the U.S. Navy", "nasa and the U S navy"),
    ("Two DVDs", "two D V D's"),
    ("An MP3 file", "an M P three file"),
    ("Henry VIII and World War II", "henry the eighth and world war two"),
    ("It weighs 5 kg and goes 60 mph.", "it weighs five kilograms and goes sixty miles per hour."),
    ("Salt & pepper", "salt and pepper"),
    ("It's 100°F.", "it's one hundred degrees fahrenheit."),
    ("A 3D movie in 1066", "a three d movie in ten sixty-six"),
    ("Call 555-1234.", "call five five five, one two three four."),
    ("A Ph.D. from MIT", "a P H D from M I T"),
    # punctuation, quotes, accents
    ("\u201cWait\u2026 what\u2014really?\u201d", "wait... what \u2014 really?"),
    ("Caf\u00e9 na\u00efve", "cafe naive"),
]


@pytest.mark.parametrize("raw, expected", GOLDEN)
def test_normalize_golden(raw, expected):
    assert normalize(raw) == expected


def test_normalize_leaves_no_digits_or_symbols():
    out = normalize("On 12/25/1999 at 11:59 p.m., 3 of 4 (75%) paid $12,000.01 — wow!")
    assert not any(c.isdigit() for c in out)
    assert set(out) <= set("abcdefghijklmnopqrstuvwxyzAPM '-,;:()—.!?")


def test_normalize_is_idempotent():
    # the split stage phonemizes the corpus's *normalized* column: it must not change again
    for raw, _ in GOLDEN:
        once = normalize(raw)
        assert normalize(once) == once and phonemize(once) == phonemize(raw), raw


def test_spell_initialisms_off():
    cfg = TextConfig(spell_initialisms=False)
    assert normalize("The FBI called.", cfg) == "the fbi called."
    assert normalize("THE FBI CALLED.") == "the fbi called."  # all-caps text reads as words


def test_cmudict_lookup():
    assert word_phonemes("hello") == ["HH", "AH0", "L", "OW1"]
    assert word_phonemes("speech") == ["S", "P", "IY1", "CH"]
    assert word_phonemes("Speech") == word_phonemes("speech")
    assert word_phonemes("don't") == ["D", "OW1", "N", "T"]
    assert word_phonemes("A") == ["EY1"] and word_phonemes("a") == ["AH0"]  # letter vs article
    assert word_phonemes("bakery's") == ["B", "EY1", "K", "ER0", "IY0", "Z"]  # possessive
    assert word_phonemes("D's") == ["D", "IY1", "Z"]  # plural of a spelled letter


def test_oov_through_espeak():
    word = "blorptastic"
    assert word not in text._lexicon()
    phones = word_phonemes(word)
    assert set(phones) <= set(SYMBOLS)
    assert phones[:2] == ["B", "L"] and phones[-1] == "K"
    assert sum(p[-1] == "1" for p in phones) == 1  # one primary stress
    assert all(p[-1].isdigit() for p in phones if p[:2] in text.VOWELS)


@pytest.mark.parametrize("ipa, arpabet", [
    (["f", "ˈaɪɚ"], ["F", "AY1", "ER0"]),  # r-coloured triphthong
    (["b", "ˈʌ", "ʔ", "n̩"], ["B", "AH1", "T", "AH0", "N"]),  # syllabic n, glottal t
    (["b", "ˈɑː", "ɾ", "əl"], ["B", "AA1", "T", "AH0", "L"]),  # flap, syllabic l
    (["n", "ˌɪɹ"], ["N", "IH2", "R"]),  # secondary stress, near vowel
    (["ˈdʒ", "ɔɪ"], ["JH", "OY1"]),  # a stress mark on a consonant moves to the vowel
    (["θ", "ˈɜː", "d"], ["TH", "ER1", "D"]),
    (["tʃ", "ˈɛɹ"], ["CH", "EH1", "R"]),
    (["ʃ", "ˈaʊɚ"], ["SH", "AW1", "ER0"]),
    (["ŋ", "ˈoːɹ"], ["NG", "AO1", "R"]),  # unseen phoneme: decomposed
])
def test_ipa_to_arpabet(ipa, arpabet):
    assert text.ipa_to_arpabet(ipa) == arpabet


def test_pause_tokens():
    seq = phonemize("Hello, world. How are you?")
    assert seq[0] == SIL and seq[-1] == SIL
    assert seq == ["sil", "HH", "AH0", "L", "OW1", "sp", "W", "ER1", "L", "D", "sil",
                   "HH", "AW1", "AA1", "R", "Y", "UW1", "sil"]
    messy = phonemize("... Well; (yes) -- no!!, maybe?! ")
    assert messy[0] == SIL and messy[-1] == SIL
    assert not any(a in (SIL, SP) and b in (SIL, SP) for a, b in zip(messy, messy[1:]))
    assert messy.count(SP) >= 2 and SIL in messy[1:-1]
    cfg = TextConfig(pause_punctuation=[";"])
    assert SP not in phonemize("Well, yes", cfg) and SP in phonemize("Well; yes", cfg)


def test_phonemize_words_matches_phonemize():
    for sentence in ["The FBI paid $3.50, really!", "Dr. Quibblefrotz arrived at 10:30 a.m.; "
                     "nobody (not even Mr. Lee) noticed."]:
        grouped = phonemize_words(sentence)
        assert [p for _, ps in grouped for p in ps] == phonemize(sentence)
        assert grouped[0] == ("", [SIL]) and grouped[-1] == ("", [SIL])
        for word, phones in grouped:
            assert phones and (word != "" or phones in ([SIL], [SP]))
            assert (word == "") == (phones[0] in (SIL, SP))


def test_symbol_table():
    assert SYMBOLS[PAD_ID] == "<pad>" and PAD_ID == 0
    assert len(SYMBOLS) == len(set(SYMBOLS)) == 1 + 15 * 3 + 24 + 2
    assert {"AA0", "AA1", "AA2", "ZH", "sil", "sp"} <= set(SYMBOLS) and "AA" not in SYMBOLS
    cmu_phones = {p for prons in list(text._lexicon().values())[::50] for p in prons}
    assert cmu_phones <= set(SYMBOLS)
    seq = phonemize("Round trip, please.")
    ids = to_ids(seq)
    assert PAD_ID not in ids and to_symbols(ids) == seq
    with pytest.raises(ValueError, match="'XX1'"):
        to_ids(["sil", "XX1"])
    assert isinstance(text.SYMBOLS_VERSION, str)


@pytest.mark.parametrize("bad", ["", "   ", "!!!", "... ,", "\u4f60\u597d"])
def test_unspeakable_text(bad):
    with pytest.raises(UnspeakableTextError, match="nothing to speak") as info:
        phonemize(bad)
    assert repr(bad) in str(info.value) and isinstance(info.value, ValueError)


def test_text_config_from_params():
    cfg = build(TextConfig, {"spell_initialisms": False}, "text")
    assert cfg.spell_initialisms is False
    assert cfg.pause_punctuation == TextConfig().pause_punctuation
    with pytest.raises(ConfigError, match="text.spell_initialism"):
        build(TextConfig, {"spell_initialism": True}, "text")
    with pytest.raises(ConfigError, match="pause_punctuation"):
        build(TextConfig, {"pause_punctuation": ["%"]}, "text")


def test_prompts():
    lines = PROMPTS.read_text(encoding="utf-8").splitlines()
    assert len(lines) >= 400
    assert len(set(lines)) == len(lines), "duplicate prompts"
    for line in lines:
        assert line == line.strip() and 3 <= len(line.split()) <= 20, line
        seq = phonemize(line)
        assert len(seq) > 4 and set(seq) <= set(SYMBOLS), line
    joined = " ".join(lines)
    for feature in ("?", "!", "$", "%", "Dr.", "Mr.", "1st"):
        assert feature in joined, feature
    assert any(c.isdigit() for c in joined)
