"""Word error rate: how the engine tests judge recognised speech."""

from __future__ import annotations

import re

# British spellings Whisper writes for words the tests speak, counted as the American ones (as Whisper's own
# English text normaliser does before its word error rates): a spelling is not a recognition error.
SPELLING_VARIANTS = {"centre": "center", "colour": "color", "theatre": "theater", "favourite": "favorite"}


def normalise_words(text: str) -> list[str]:
    """Lower-case words without punctuation, so that WER counts words and not commas or spellings."""
    words = re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split()
    return [SPELLING_VARIANTS.get(word, word) for word in words]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, by word-level edit distance."""
    ref, hyp = normalise_words(reference), normalise_words(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, start=1):
        current = [i]
        for j, heard in enumerate(hyp, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != heard)))
        previous = current
    return previous[-1] / max(len(ref), 1)
