"""Text to speech with trained models: `make synth`, or directly

    python -m stages.synth --text "Speech synthesis is fun." [--acoustic NAME]
        [--vocoder NAME] [--out synth.wav] [--models data/models]
        [--metrics metrics/evaluate.json] [--params params.yaml]

Text -> normalized phonemes -> mel -> wav, written to --out with a PNG of the mel beside it
(same name, .png). An empty --acoustic / --vocoder is filled with the best-ranked pair of
the latest evaluation (--metrics) that matches the other name; without an evaluation, with
`synth.acoustic` / `synth.vocoder` from params. Long text is split at sentence boundaries
and joined with `synth.sentence_pause` seconds of silence. Not a DVC stage: it reads the
finished models and writes only --out.

Then it listens to what it wrote: the recognizer of `evaluate.recognizer` (Whisper tiny.en
by default) prints what it heard with the word error rate against --text, and DistillMOS
the predicted MOS (1-5), so a user sees at once whether the output is intelligible.
`--no-check` skips both.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tts import plots
from tts.audio import save_wav
from tts.config import ConfigError, load_params
from tts.evaluation import best_pair, load_scorers
from tts.evaluation import listen as score
from tts.inference import MODEL_ROOT, SynthesisError, check_name, load_synthesizer
from tts.mos import MOSError
from tts.recognizer import RecognizerError

EVALUATION_METRICS = Path("metrics/evaluate.json")
FIGURE_DPI = 100


def choose_pair(acoustic: str, vocoder: str, metrics: Path, cfg) -> tuple[str, str, str]:
    """(acoustic, vocoder, why): given names win; the evaluation's best fills the rest."""
    if acoustic:
        check_name(acoustic, "acoustic")
    if vocoder:
        check_name(vocoder, "vocoder")
    if acoustic and vocoder:
        return acoustic, vocoder, "as requested"
    best = best_pair(metrics, acoustic, vocoder)
    if best:
        return best[0], best[1], f"best-ranked evaluated pair in {metrics}"
    return (acoustic or cfg.acoustic, vocoder or cfg.vocoder,
            f"synth.acoustic / synth.vocoder defaults (no evaluation in {metrics})")


def listen(params, wav, sample_rate: int, text: str) -> dict:
    """What the recognizer heard (with WER/CER against `text`) and the predicted MOS."""
    cfg = params.section("evaluate")
    heard = score(load_scorers(cfg), wav, sample_rate, text)
    out = {}
    if "hypothesis" in heard:
        out.update(heard=heard["hypothesis"], wer=round(heard["wer"], 3),
                   cer=round(heard["cer"], 3))
    if heard.get("mos") is not None:
        out["predicted_mos"] = round(heard["mos"], 2)
    return out


def run(params, text: str, out: Path, acoustic: str = "", vocoder: str = "",
        models: Path = MODEL_ROOT, metrics: Path = EVALUATION_METRICS,
        check: bool = True) -> dict:
    cfg = params.section("synth")
    acoustic, vocoder, why = choose_pair(acoustic, vocoder, metrics, cfg)
    synth = load_synthesizer(acoustic, vocoder, params.audio, params.section("text"), cfg, models)
    result = synth(text)
    save_wav(out, result.audio, result.sample_rate)
    figure = out.with_suffix(".png")
    fig = plots.mel_figure({f"{acoustic} + {synth.vocoder.label}": result.mel},
                           f"{len(result.chunks)} sentence(s)")
    fig.savefig(figure, dpi=FIGURE_DPI)
    plots.close(fig)
    compute = result.acoustic_seconds + result.vocoder_seconds
    info = {"acoustic": acoustic, "vocoder": synth.vocoder.label, "chosen": why,
            "wav": str(out), "png": str(figure), "seconds": round(result.seconds, 3),
            "sentences": len(result.chunks), "rtf": round(compute / result.seconds, 4),
            "hit_max_length": result.hit_max_length}
    if check:
        audio = result.audio.numpy() if hasattr(result.audio, "numpy") else result.audio
        info.update(listen(params, audio, result.sample_rate, text))
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", required=True, help="what to say ('-': read stdin)")
    parser.add_argument("--acoustic", default="", help="acoustic model (empty: best evaluated)")
    parser.add_argument("--vocoder", default="", help="vocoder (empty: best evaluated)")
    parser.add_argument("--out", type=Path, default=Path("synth.wav"), help="wav to write")
    parser.add_argument("--models", type=Path, default=MODEL_ROOT, help="folder of finished models")
    parser.add_argument("--metrics", type=Path, default=EVALUATION_METRICS,
                        help="evaluation metrics that rank the pairs")
    parser.add_argument("--no-check", action="store_true",
                        help="skip the recognizer transcript and predicted MOS")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    text = sys.stdin.read() if args.text == "-" else args.text
    try:
        info = run(load_params(args.params), text, args.out, args.acoustic.strip(),
                   args.vocoder.strip(), args.models, args.metrics, not args.no_check)
    except (ConfigError, SynthesisError, RecognizerError, MOSError) as exc:
        raise SystemExit(f"synth: {exc}") from exc
    if info["hit_max_length"]:
        print(f"synth: warning: {info['acoustic']} never decided to stop in some sentence; "
              f"the audio was cut at synth.max_frames_per_phoneme", file=sys.stderr)
    if "heard" in info:
        print(f"synth: the recognizer heard: {info['heard']!r} (WER {info['wer']:.2f})",
              file=sys.stderr)
    if "predicted_mos" in info:
        print(f"synth: predicted MOS {info['predicted_mos']:.2f} (1-5; real recordings of "
              f"LJSpeech: about 4.4)", file=sys.stderr)
    print(json.dumps(info))


if __name__ == "__main__":
    main()
