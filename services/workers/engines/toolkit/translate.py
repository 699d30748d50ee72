"""Machine translation with Apertium (the Debian `apertium` package and its language-pair packages)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

from services.workers.engines.base import BadInput, TransientError

TIMEOUT_SECONDS = 120
# Apertium names its modes with ISO 639-3 codes (eng-spa); jobs speak ISO 639-1 (en, es).
_ISO_639_1 = {
    "afr": "af",
    "arg": "an",
    "ast": "ast",
    "cat": "ca",
    "dan": "da",
    "deu": "de",
    "eng": "en",
    "epo": "eo",
    "eus": "eu",
    "fra": "fr",
    "glg": "gl",
    "ita": "it",
    "nld": "nl",
    "nno": "nn",
    "nob": "nb",
    "oci": "oc",
    "por": "pt",
    "ron": "ro",
    "spa": "es",
    "swe": "sv",
}


def _binary() -> str:
    path = shutil.which("apertium")
    if path is None:
        raise BadInput("apertium is not installed on this worker, so nothing can be translated")
    return path


def parse_modes(listing: str) -> dict[tuple[str, str], str]:
    """(source, target) ISO 639-1 pairs to mode names, from the output of `apertium -l`.

    Variant modes such as spa-eng_US and modes whose codes are unknown here are left out.
    """
    pairs: dict[tuple[str, str], str] = {}
    for line in listing.split():
        codes = line.split("-")
        if len(codes) != 2:
            continue
        source, target = (_ISO_639_1.get(code, code if len(code) == 2 and code.isalpha() else "") for code in codes)
        if source and target:
            pairs.setdefault((source, target), line)
    return pairs


def available_pairs() -> dict[tuple[str, str], str]:
    """The language pairs the installed Apertium translates, mapped to their mode names."""
    done = subprocess.run([_binary(), "-l"], capture_output=True, text=True, check=False, timeout=TIMEOUT_SECONDS)
    return parse_modes(done.stdout)


def translation_mode(source: str, target: str) -> str:
    """The Apertium mode for `source` -> `target`; BadInput lists the supported pairs if there is none."""
    pairs = available_pairs()
    mode = pairs.get((source, target))
    if mode is None:
        listed = ", ".join(f"{s}->{t} ({m})" for (s, t), m in sorted(pairs.items())) or "none installed"
        raise BadInput(f"cannot translate {source}->{target}; supported pairs: {listed}")
    return mode


def translate_lines(lines: Sequence[str], mode: str) -> list[str]:
    """Translate each line; `-u` drops the marks Apertium puts on words it does not know."""
    if not lines:
        return []
    # One line per text: Apertium keeps line breaks, so the output splits back line for line.
    flat = [" ".join(line.split()) for line in lines]
    try:
        done = subprocess.run(
            [_binary(), "-u", mode],
            input="\n".join(flat) + "\n",
            capture_output=True,
            text=True,
            check=False,
            timeout=TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired as error:
        raise TransientError(f"apertium {mode} took longer than {TIMEOUT_SECONDS} s") from error
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise TransientError(f"apertium {mode} failed: {last}")
    output = done.stdout[:-1] if done.stdout.endswith("\n") else done.stdout
    translated = [line.strip() for line in output.split("\n")]
    if len(translated) != len(flat):
        raise TransientError(f"apertium {mode} returned {len(translated)} lines for {len(flat)}")
    return translated
