"""The evaluation report: one self-contained HTML page, a Markdown summary, DVC metrics.

Input: the rows of `tts.evaluation.compare` (pairs and copy synthesis restricted to the
utterances they share, the recordings on the same utterances). The page opens with the
floor (the recordings' WER and predicted MOS), then a verdict a user can act on (which
pairs are intelligible, which networks were still improving when training stopped and
which budget to raise, the best and fastest pair, the best vocoder), then the sorted tables
(recordings first; every mean with its 95% interval; best value per column marked), rows
evaluated on fewer sentences (unranked), a learning-curve figure per network, a listening
grid and the figures. Images and audio are embedded as base64, so the file can be mailed
or opened offline.
"""

from __future__ import annotations

import base64
import html
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

from models import ACOUSTIC_MODELS, VOCODERS
from tts import curves as C
from tts import evaluation as E
from tts.evaluation import COPY_METRICS, METRICS, PAIR_METRICS, sort_key
from tts.tracking import write_metrics

ALL_METRICS = tuple(dict.fromkeys(PAIR_METRICS + COPY_METRICS))

BETTER_ARROW = {"low": "↓", "high": "↑", "one": "→1"}
BEST_MARK = "★"
RTF_BAR_MAX = 100.0  # % width of the longest RTF bar

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;
 max-width:1300px;color:#1d2330;padding:0 16px}
h1{margin-bottom:4px}h2{margin-top:36px;border-bottom:2px solid #dde3ee;padding-bottom:4px}
.meta{color:#5b6474;margin-top:0}
.cards{display:flex;gap:14px;flex-wrap:wrap}
.card{flex:1 1 280px;border:1px solid #dde3ee;border-radius:10px;padding:12px 16px;
 background:#f7f9fc}
.card h3{margin:0 0 6px 0;font-size:14px;color:#5b6474;text-transform:uppercase;
 letter-spacing:.04em}
.card .big{font-size:22px;font-weight:700}.card.best{border-color:#2e9e5b;background:#eefaf2}
.card.fast{border-color:#2f6fde;background:#eef4ff}
table{border-collapse:collapse;margin:10px 0;font-size:14px}
th,td{border:1px solid #dde3ee;padding:4px 7px;text-align:right;white-space:nowrap}
th{background:#f0f3f8;position:sticky;top:0;white-space:normal;max-width:90px;font-size:13px}
td.name,th.name{text-align:left;max-width:none}
td.best{background:#d8f5e1;font-weight:700}
tr.reference td{color:#5b6474;background:#fafafa;font-style:italic}
tr.top td.name{font-weight:700}
.bar{display:inline-block;height:8px;background:#2f6fde;margin-right:6px;vertical-align:middle;
 border-radius:2px}
.note{color:#5b6474;font-size:13px}
audio{width:210px;height:32px}
.grid td,.grid th{text-align:center;vertical-align:middle}
.grid td.name{text-align:left}
details{margin:8px 0;border:1px solid #dde3ee;border-radius:8px;padding:6px 10px}
summary{cursor:pointer;font-weight:600}
img{max-width:100%;margin:4px}
.missing{color:#b3261e}
.ci{display:block;color:#7a8394;font-size:11px}
.verdict li{margin:4px 0}
.floor{border-color:#8a6d00;background:#fff8e1}
"""


# -------------------------------------------------------------------------------- helpers


def fmt(name: str, value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return METRICS[name].format.format(value)


def heading(name: str) -> str:
    """A metric's column heading with the arrow of its better direction."""
    return f"{METRICS[name].label} {BETTER_ARROW[METRICS[name].better]}"


def best_values(rows: list[dict], names) -> dict[str, float]:
    """Per column, the best finite value among `rows`; left out when no value is finite or
    when every row shows the same value (a mark on every row says nothing)."""
    best = {}
    for name in names:
        values = [r["metrics"].get(name) for r in rows]
        keyed = [(sort_key(v, METRICS[name].better), v) for v in values if v is not None]
        keyed = [kv for kv in keyed if math.isfinite(kv[0])]
        shown = {fmt(name, v) for v in values if v is not None}
        if keyed and (len(shown) > 1 or len(rows) == 1):
            best[name] = min(keyed)[1]
    return best


def data_uri(path: str | Path, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(Path(path).read_bytes()).decode('ascii')}"


def audio_tag(path: str | Path | None) -> str:
    if not path or not Path(path).is_file():
        return '<span class="missing">–</span>'
    return f'<audio controls preload="none" src="{data_uri(path, "audio/wav")}"></audio>'


def image_tag(path: str | Path, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="{data_uri(path, "image/png")}">'


def _columns(rows: list[dict], names) -> list[str]:
    """The metric columns at least one row has a value for."""
    return [n for n in names if any(r["metrics"].get(n) is not None for r in rows)]


def interval_text(row: dict, name: str) -> str:
    """"[lo, hi]" of a row's 95% interval on `name`, or ""."""
    ci = (row.get("intervals") or {}).get(name)
    if not ci:
        return ""
    return f"[{fmt(name, ci[0])}, {fmt(name, ci[1])}]"


def metric_table(rows: list[dict], names, reference: dict | None = None,
                 rank: bool = False) -> str:
    """HTML table of `rows` (already sorted); best value per column marked; `reference`
    (the recordings, the floor) first in grey and never marked. Each mean carries its 95%
    interval below it."""
    names = _columns(rows, names)
    best = best_values(rows, names)
    rtf_max = max([r["metrics"].get("rtf") or 0 for r in rows] + [1e-12])
    head = (["rank"] if rank else []) + ["system", "n"]
    cells = "".join(f'<th class="{"name" if h == "system" else ""}">{h}</th>' for h in head)
    cells += "".join(f'<th title="{n}">{heading(n)}</th>' for n in names)
    out = [f"<table><thead><tr>{cells}</tr></thead><tbody>"]
    for row in ([reference] if reference else []) + rows:
        is_ref = row is reference
        cls = "reference" if is_ref else ("top" if row.get("rank") == 1 else "")
        tds = []
        if rank:
            tds.append(f"<td>{'' if is_ref else row.get('rank', '')}</td>")
        tds.append(f'<td class="name">{html.escape(row["label"])}</td><td>{row["n"]}</td>')
        for n in names:
            value = row["metrics"].get(n)
            text = fmt(n, value)
            marked = not is_ref and n in best and text == fmt(n, best[n])
            if n == "rtf" and value is not None and not is_ref:
                width = RTF_BAR_MAX * value / rtf_max
                text = f'<span class="bar" style="width:{width:.0f}px"></span>{text}'
            ci = interval_text(row, n)
            if ci:
                text += f'<span class="ci">{ci}</span>'
            tds.append(f'<td class="best">{BEST_MARK} {text}</td>' if marked
                       else f"<td>{text}</td>")
        out.append(f'<tr class="{cls}">{"".join(tds)}</tr>')
    out.append("</tbody></table>")
    return "\n".join(out)


# ------------------------------------------------------------------------------ verdict


def verdict(pairs: list[dict], copies: list[dict], truth: dict | None, rank_by, *,
            curves: dict | None = None, intelligible_wer_gap: float = 0.1) -> dict:
    """The headline facts: the floor (recordings), intelligible pairs, networks still
    improving, best / fastest pair, best copy-synthesis vocoder, and what to do next.

    `curves`: {network: `tts.curves.trend` result} from the training plots."""
    facts: dict = {"rank_by": list(rank_by), "intelligible_wer_gap": intelligible_wer_gap}
    if truth:
        facts["floor"] = truth
        facts["floor_wer"] = truth["metrics"].get("wer")
    if pairs:
        facts["best_pair"] = pairs[0]
        timed = [p for p in pairs if p["metrics"].get("rtf") is not None]
        if timed:
            facts["fastest_pair"] = min(timed, key=lambda p: p["metrics"]["rtf"])
        gaps = [(p, p["metrics"].get("wer_gap")) for p in pairs]
        facts["intelligible"] = [p for p, g in gaps if g is not None
                                 and g <= intelligible_wer_gap]
        facts["unintelligible"] = [p for p, g in gaps if g is not None
                                   and g > intelligible_wer_gap]
    if copies:
        facts["best_vocoder"] = min(copies, key=lambda c: sort_key(c["metrics"].get("mcd"), "low"))
    curves = curves or {}
    facts["improving"] = {name: c for name, c in curves.items() if c.get("improving")}
    facts["curves"] = curves
    facts["actions"] = actions(facts)
    return facts


def actions(facts: dict) -> list[str]:
    """What to do next, in plain words."""
    todo = []
    for name, c in facts.get("improving", {}).items():
        todo.append(f"{name} was still improving when training stopped ({c['signal']} "
                    f"{c['previous']:.3g} → {c['last']:.3g} over the last "
                    f"{c['last_steps']} steps): raise `{c['steps_key']}` and re-run "
                    f"`dvc repro`.")
    if facts.get("unintelligible") and not facts.get("intelligible"):
        best = min(facts["unintelligible"], key=lambda p: p["metrics"]["wer_gap"])
        todo.append(f"No pair is intelligible yet (best: {best['label']}, WER "
                    f"{fmt('wer', best['metrics'].get('wer'))} against the recordings' "
                    f"{fmt('wer', facts.get('floor_wer'))}): raise the networks' `steps` "
                    f"or use a bigger preset (presets/).")
    if not todo and facts.get("intelligible"):
        todo.append("Every network had stopped improving; compare pairs by MOS and MCD, or "
                    "move to a larger preset to lower the floor further.")
    return todo


def _speed(rtf: float) -> str:
    return (f"{1 / rtf:.1f}× faster than real time" if rtf < 1
            else f"{rtf:.1f}× slower than real time")


def _with_ci(row: dict, name: str) -> str:
    ci = interval_text(row, name)
    return fmt(name, row["metrics"].get(name)) + (f" {ci}" if ci else "")


def verdict_list(facts: dict) -> str:
    """The floor and the verdict as sentences."""
    items = []
    floor = facts.get("floor")
    if floor:
        items.append(f"<b>Floor</b> (the recordings, n = {floor['n']}): WER "
                     f"{_with_ci(floor, 'wer')}, predicted MOS {_with_ci(floor, 'mos')}. "
                     f"No pair can be judged below it."
                     + (f" MCD cannot go below {_with_ci(floor, 'mcd_band_floor')} dB: the "
                        f"recordings against their own low-pass at the mels' upper "
                        f"frequency (audio.fmax)."
                        if floor["metrics"].get("mcd_band_floor") else ""))
    gap = facts.get("intelligible_wer_gap", 0.1)
    if "intelligible" in facts:
        names = ", ".join(html.escape(p["label"]) for p in facts["intelligible"]) or "none"
        items.append(f"<b>Intelligible</b> (WER within {gap:g} of the recordings on the same "
                     f"sentences): {names}.")
    curves = facts.get("curves") or {}
    if curves:
        still = ", ".join(html.escape(n) for n in facts.get("improving", {})) or "none"
        items.append(f"<b>Still improving when training stopped</b> (under-trained): {still}.")
    for action in facts.get("actions", []):
        items.append(f"<b>Next</b>: {html.escape(action)}")
    return f'<ul class="verdict">{"".join(f"<li>{i}</li>" for i in items)}</ul>' if items \
        else ""


def cards(facts: dict) -> str:
    parts = []
    if facts.get("floor"):
        f = facts["floor"]
        parts.append(
            f'<div class="card floor"><h3>The floor: recordings</h3><div class="big">WER '
            f'{fmt("wer", f["metrics"].get("wer"))} · MOS {fmt("mos", f["metrics"].get("mos"))}'
            f'</div><div class="note">n = {f["n"]}; WER {interval_text(f, "wer")}, MOS '
            f'{interval_text(f, "mos")} (95%)</div></div>')
    if "best_pair" in facts:
        p = facts["best_pair"]
        m = p["metrics"]
        first = p["audio"][0]["wav"] if p["audio"] else None
        parts.append(
            f'<div class="card best"><h3>Best-sounding pair (rank 1)</h3>'
            f'<div class="big">{html.escape(p["label"])}</div>'
            f'<div>WER {fmt("wer", m.get("wer"))} · MOS {fmt("mos", m.get("mos"))} · '
            f'MCD {fmt("mcd", m.get("mcd"))} dB · '
            f'RTF {fmt("rtf", m.get("rtf"))}</div><div>{audio_tag(first)}</div>'
            f'<div class="note">mean rank over {", ".join(facts["rank_by"])}</div></div>')
    if "fastest_pair" in facts:
        p = facts["fastest_pair"]
        rtf = p["metrics"]["rtf"]
        parts.append(
            f'<div class="card fast"><h3>Fastest pair</h3><div class="big">'
            f'{html.escape(p["label"])}</div><div>RTF {fmt("rtf", rtf)}: {_speed(rtf)}</div>'
            f'<div class="note">acoustic {fmt("rtf", p["metrics"].get("rtf_acoustic"))} + vocoder '
            f'{fmt("rtf", p["metrics"].get("rtf_vocoder"))}; quality rank {p["rank"]}</div></div>')
    if "best_vocoder" in facts:
        c = facts["best_vocoder"]
        m = c["metrics"]
        parts.append(
            f'<div class="card"><h3>Best vocoder (copy synthesis)</h3><div class="big">'
            f'{html.escape(c["label"])}</div><div>MCD {fmt("mcd", m.get("mcd"))} dB · PESQ '
            f'{fmt("pesq", m.get("pesq"))} · STOI {fmt("stoi", m.get("stoi"))}</div></div>')
    return f'<div class="cards">{"".join(parts)}</div>'


# ------------------------------------------------------------------------------ sections


def listening_grid(pairs: list[dict], copies: list[dict], truth: dict | None, *,
                   acoustic_names=ACOUSTIC_MODELS, vocoder_names=VOCODERS) -> str:
    """Per report sentence: recording, copy synthesis per vocoder, every pair (rows:
    acoustic models, columns: vocoders)."""
    sentences: dict[str, str] = {}
    for row in ([truth] if truth else []) + copies + pairs:
        for a in row["audio"]:
            sentences.setdefault(a["id"], a["text"])
    wav: dict[tuple, str] = {}
    for row in ([truth] if truth else []) + copies + pairs:
        for a in row["audio"]:  # the first copy row of a vocoder (WaveGrad: its first schedule)
            key = (row["acoustic"] or "copy", row["vocoder"] or "truth", a["id"])
            wav.setdefault(key, a["wav"])
    copy_label = {c["vocoder"]: c["label"] for c in copies}
    out = []
    for uid, text in sentences.items():
        out.append(f"<h3>{html.escape(uid)}: “{html.escape(text)}”</h3>")
        out.append(f'<p>recording {audio_tag(wav.get(("copy", "truth", uid)))}</p>')
        head = "".join(f"<th>{html.escape(v)}</th>" for v in vocoder_names)
        rows = [f'<table class="grid"><thead><tr><th class="name">acoustic ↓ / vocoder →</th>'
                f"{head}</tr></thead><tbody>"]
        for a in ["copy"] + list(acoustic_names):
            name = "copy synthesis (recorded mel)" if a == "copy" else a
            cells = "".join(f"<td>{audio_tag(wav.get((a, v, uid)))}</td>" for v in vocoder_names)
            rows.append(f'<tr><td class="name">{html.escape(name)}</td>{cells}</tr>')
        rows.append("</tbody></table>")
        out += rows
    if len(copy_label) < len(copies):
        out.append('<p class="note">copy synthesis plays the first searched WaveGrad '
                   'schedule; every schedule is in the copy-synthesis table.</p>')
    return "\n".join(out)


def figure_sections(pairs: list[dict], copies: list[dict]) -> str:
    out = []
    for i, row in enumerate(pairs + copies):
        images = "".join(image_tag(path, f"{row['label']} {kind}")
                         for figs in row["figures"].values() for kind, path in figs.items()
                         if Path(path).is_file())
        if not images:
            continue
        what = f"rank {row['rank']}: " if "rank" in row else "copy synthesis: "
        out.append(f'<details{" open" if i == 0 else ""}><summary>{html.escape(what)}'
                   f'{html.escape(row["label"])}</summary>{images}</details>')
    return "\n".join(out)


def render_html(pairs: list[dict], copies: list[dict], truth: dict | None, facts: dict, *,
                missing: list[str], title: str, subtitle: str, partial: list[dict] = (),
                curve_figures: dict[str, str] | None = None,
                acoustic_names=ACOUSTIC_MODELS, vocoder_names=VOCODERS) -> str:
    """`missing`: evaluation stages not run; `partial`: rows evaluated on fewer sentences
    (shown, not ranked); `curve_figures`: {network: PNG path} of the learning curves;
    the listening grid's rows and columns are the registry's names."""
    missing_note = ""
    if missing:
        missing_note = ('<p class="missing">Not evaluated (run the stage to include it): '
                        + ", ".join(f"<code>{html.escape(m)}</code>" for m in missing) + "</p>")
    rank_by = html.escape(", ".join(facts["rank_by"]))
    pair_table = metric_table(pairs, PAIR_METRICS, truth, rank=True) if pairs else \
        "<p>No pair evaluated yet.</p>"
    copy_table = metric_table(copies, COPY_METRICS, facts.get("truth_copies", truth)) \
        if copies else "<p>No vocoder evaluated yet.</p>"
    partial_html = ""
    skipped = [r for r in partial if not r["n"]]
    partial = [r for r in partial if r["n"]]
    if skipped:
        partial_html += ("<p class=\"note\">Not evaluated on any sentence (e.g. "
                         "<code>evaluate.wavenet_utterances: 0</code>): "
                         + ", ".join(html.escape(r["label"]) for r in skipped) + ".</p>")
    if partial:
        partial_html += (
            "<h2>Evaluated on fewer sentences (not ranked)</h2><p class=\"note\">These rows "
            "ran on a subset of the test sentences (WaveNet generates one sample at a time: "
            "<code>evaluate.wavenet_utterances</code>), so their means are not comparable with "
            "the tables above and they are neither ranked nor picked by the verdict.</p>"
            + metric_table(partial, ALL_METRICS))
    curves_html = ""
    if curve_figures:
        images = "".join(f"<div style=\"display:inline-block\">{image_tag(path, name)}</div>"
                         for name, path in curve_figures.items() if Path(path).is_file())
        curves_html = (
            "<h2>Learning curves</h2><p class=\"note\">Validation loss, and where logged the "
            "predicted MOS and recognizer CER of validation clips (vocoders: copy synthesis; "
            "acoustic models: their mel through Griffin-Lim), per training step. A curve still "
            "falling at its last point means the network is under-trained.</p>" + images
            + scale_list(facts, html_list=True))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><style>{CSS}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class="meta">{html.escape(subtitle)}</p>
{cards(facts)}
{verdict_list(facts)}
{missing_note}
<h2>Text to speech: every acoustic model × every vocoder</h2>
<p class="note">Sorted by rank (mean of the column ranks in {rank_by});
{BEST_MARK} marks the best value of each column; ↓ lower is better, ↑ higher is better, →1 closest
to 1 is best. Every mean is over the n test sentences all ranked rows share, with its 95%
bootstrap interval below it. The grey first row is the recordings measured the same way:
the floor. WER/CER are the recognizer's words (Whisper tiny.en unless
<code>evaluate.recognizer</code> says otherwise) against the transcript, both normalized the
same way; "− recordings" columns are the pair minus the recordings, sentence by sentence;
MOS is DistillMOS's predicted mean opinion score (1–5, no reference needed); MCD (WORLD/SPTK
mel-cepstra, c1–c34, α 0.455) and log-F0 RMSE are against the recording after dynamic time
warping; align score (share of attention near the diagonal) and failures (no stop, or align
score below the threshold) exist for attention models only; RTF is compute seconds per
second of audio (below 1: faster than real time).</p>
{pair_table}
<h2>Copy synthesis: each vocoder on the recordings' own mels</h2>
<p class="note">How much each vocoder alone loses: the recorded log-mel in, audio out,
compared sample-aligned with the recording (MR-STFT: multi-resolution STFT distance; PESQ
wide band, 1–4.6; STOI 0–1).</p>
{copy_table}
{partial_html}
{curves_html}
<h2>Listen</h2>
{listening_grid(pairs, copies, truth, acoustic_names=acoustic_names,
                vocoder_names=vocoder_names)}
<h2>Figures</h2>
<p class="note">Mel spectrograms (acoustic model output, the audio it became, the recording),
attention (decoder step × input phoneme), and F0 against the recording (the synthesized
contour warped onto the recording's time axis by the MCD alignment).</p>
{figure_sections(pairs, copies)}
</body></html>
"""


# ----------------------------------------------------------------------------- markdown


def markdown_table(rows: list[dict], names, reference: dict | None = None,
                   rank: bool = False) -> str:
    names = _columns(rows, names)
    best = best_values(rows, names)
    head = (["rank"] if rank else []) + ["system", "n"] + [heading(n) for n in names]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in ([reference] if reference else []) + rows:
        is_ref = row is reference
        cells = ([str("" if is_ref else row.get("rank", ""))] if rank else []) + [
            f"*{row['label']}*" if is_ref else row["label"], str(row["n"])]
        for n in names:
            value = row["metrics"].get(n)
            text = fmt(n, value)
            text = f"**{text}**" if not is_ref and n in best and text == fmt(n, best[n]) \
                else text
            ci = interval_text(row, n)
            cells.append(f"{text} {ci}" if ci else text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def scale_list(facts: dict, html_list: bool = False) -> str:
    """How far each network got against its GPU recipe: one sentence per network."""
    scale, curves = facts.get("scale") or {}, facts.get("curves") or {}
    lines = [C.scale_sentence(name, scale[name], curves[name]) for name in scale]
    if not lines:
        return ""
    intro = ("Each network's training here against its GPU recipe (presets/ljspeech-gpu.yaml: "
             "the steps and batches of its paper or reference code, the scale at which it "
             "is published as working), and where its validation curve ended.")
    if html_list:
        return (f'<h3>How far each network got</h3><p class="note">{html.escape(intro)}</p>'
                f'<ul>{"".join(f"<li>{html.escape(line)}</li>" for line in lines)}</ul>')
    return "\n".join(["", "## How far each network got", "", intro, ""]
                     + [f"- {line}" for line in lines])


def render_markdown(pairs: list[dict], copies: list[dict], truth: dict | None,
                    facts: dict, *, missing: list[str], title: str, subtitle: str,
                    partial: list[dict] = ()) -> str:
    lines = [f"# {title}", "", subtitle, ""]
    if facts.get("floor"):
        f = facts["floor"]
        lines.append(f"- Floor (recordings, n = {f['n']}): WER {_with_ci(f, 'wer')}, "
                     f"predicted MOS {_with_ci(f, 'mos')}; MCD floor of the mel band limit "
                     f"(audio.fmax) {_with_ci(f, 'mcd_band_floor')} dB")
    if "intelligible" in facts:
        lines.append(f"- Intelligible (WER within {facts['intelligible_wer_gap']:g} of the "
                     f"recordings): {', '.join(p['label'] for p in facts['intelligible']) or 'none'}")
    if facts.get("curves"):
        lines.append(f"- Still improving when training stopped: "
                     f"{', '.join(facts.get('improving', {})) or 'none'}")
    for action in facts.get("actions", []):
        lines.append(f"- Next: {action}")
    if "best_pair" in facts:
        p = facts["best_pair"]
        lines.append(f"- Best-sounding pair: **{p['label']}** (rank 1; mean rank over "
                     f"{', '.join(facts['rank_by'])})")
    if "fastest_pair" in facts:
        p = facts["fastest_pair"]
        lines.append(f"- Fastest pair: **{p['label']}**, RTF {fmt('rtf', p['metrics']['rtf'])} "
                     f"({_speed(p['metrics']['rtf'])})")
    if "best_vocoder" in facts:
        lines.append(f"- Best vocoder in copy synthesis (MCD): "
                     f"**{facts['best_vocoder']['label']}**")
    if missing:
        lines.append(f"- Not evaluated: {', '.join(missing)}")
    lines += ["", "## Text to speech (best per column in bold)", ""]
    lines.append(markdown_table(pairs, PAIR_METRICS, truth, rank=True) if pairs
                 else "No pair evaluated yet.")
    lines += ["", "## Copy synthesis", ""]
    lines.append(markdown_table(copies, COPY_METRICS, facts.get("truth_copies", truth))
                 if copies else "No vocoder evaluated yet.")
    skipped = [r["label"] for r in partial if not r["n"]]
    partial = [r for r in partial if r["n"]]
    if partial:
        lines += ["", "## Evaluated on fewer sentences (not ranked)", ""]
        lines.append(markdown_table(partial, ALL_METRICS))
    if skipped:
        lines += ["", f"Not evaluated on any sentence: {', '.join(skipped)}"]
    scale = scale_list(facts)
    if scale:
        lines.append(scale)
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ metrics


def dvc_metrics(pairs: list[dict], copies: list[dict], truth: dict | None,
                partial: list[dict] = ()) -> dict:
    """Numbers only (`dvc metrics diff` compares them); pairs keyed `acoustic-vocoder`;
    rows on fewer sentences under "unranked"."""
    def clean(row: dict) -> dict:
        values = {k: v for k, v in row["metrics"].items() if v is not None}
        intervals = {k: {"lo": lo, "hi": hi} for k, (lo, hi) in
                     (row.get("intervals") or {}).items()}
        return {**values, "n": row["n"], **({"ci95": intervals} if intervals else {})}

    out: dict = {"pairs": {p["key"]: {**clean(p), "rank": p["rank"], "quality": p["quality"]}
                           for p in pairs},
                 "copy_synthesis": {c["key"]: clean(c) for c in copies}}
    if truth:
        out["ground_truth"] = clean(truth)
    if partial:
        out["unranked"] = {r["key"]: clean(r) for r in partial}
    return out


# ------------------------------------------------------------------------- the whole report

TITLE = "Text-to-speech evaluation"


@dataclass
class Report:
    """What `write_report` wrote about: the DVC metrics and every row it shows."""

    metrics: dict  # metrics/evaluate.json's content
    rows: list[dict]  # recordings, copy synthesis, ranked pairs, then the unranked rows


def write_report(found: E.Gathered, cfg, *, report: Path, summary: Path, metrics: Path,
                 utterances: Path, curves: Path | None = None, corpus: str = "",
                 sample_rate: int = 0, params=None, recipe=None) -> Report:
    """Compare the gathered rows (`tts.evaluation.compare`), read the training curves
    (`curves`: the DVC plots TSVs) and write the HTML report, its Markdown summary, the
    DVC metrics JSON and every shown row's per-utterance lines in one CSV. `cfg`: the
    `evaluate:` section; `corpus` and `sample_rate` go into the subtitle; `params` (this
    run's) and `recipe` (the GPU recipe's, `tts.presets.apply`) set each network's budget
    against its published scale (`tts.curves.training_scale`)."""
    table = E.compare(found.pairs, found.copies, found.truth, cfg)
    pairs, copies, truth = table["pairs"], table["copies"], table["truth"]
    partial = table["partial_pairs"] + table["partial_copies"]
    trends, curve_figures = {}, {}
    with tempfile.TemporaryDirectory() as scratch:
        if curves and Path(curves).is_dir():
            trends = C.network_trends(Path(curves))
            curve_figures = C.write_curve_figures(Path(curves), Path(scratch), cfg.figure_dpi)
        facts = verdict(pairs, copies, truth, cfg.rank_by, curves=trends,
                        intelligible_wer_gap=cfg.intelligible_wer_gap)
        facts["truth_copies"] = table["truth_copies"]
        if trends and params is not None and recipe is not None:
            facts["scale"] = C.training_scale(trends, params, recipe)
        n = truth["n"] if truth else max(r["n"] for r in pairs + copies)
        subtitle = (f"{n} held-out test sentences shared by every ranked row · corpus "
                    f"{corpus} · {sample_rate} Hz · best pair = rank 1")
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(render_html(pairs, copies, truth, facts, missing=found.missing,
                                      title=TITLE, subtitle=subtitle, partial=partial,
                                      curve_figures=curve_figures))
    summary.parent.mkdir(parents=True, exist_ok=True)
    summary.write_text(render_markdown(pairs, copies, truth, facts, missing=found.missing,
                                       title=TITLE, subtitle=subtitle, partial=partial))
    values = dvc_metrics(pairs, copies, truth, partial)
    if trends:
        values["still_improving"] = {k: int(v["improving"]) for k, v in trends.items()}
    write_metrics(metrics, values)
    rows = ([truth] if truth else []) + copies + pairs + partial
    lines = []
    for row in rows:
        lines += [{"key": row["key"], **r} for r in E.read_utterances(
            Path(row["folder"]) / E.UTTERANCES_FILE) if r["key"] == row["key"]]
    utterances.parent.mkdir(parents=True, exist_ok=True)
    E.write_utterances(utterances, lines)
    return Report(values, rows)
