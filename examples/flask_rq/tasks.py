"""The job of the Flask example: count the words of a text."""

from __future__ import annotations

from collections import Counter


def count_words(text: str, top: int = 3) -> dict[str, object]:
    """Return the number of words in `text` and its `top` most common words."""
    words = [word.strip(".,;:!?\"'()").lower() for word in text.split()]
    counts = Counter(word for word in words if word)
    return {"words": sum(counts.values()), "top": [word for word, _ in counts.most_common(top)]}
