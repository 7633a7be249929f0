"""Where a greedy answer ends: at the end of turn, at the end of its first sentence, or before it
starts to repeat itself.

Small language models decoding greedily fall into loops ("cat, a cat, a cat, ...") and then run
to the token limit. Cutting the answer (a stopping rule) keeps it a *prefix of the greedy
decode*: every kept token is still the model's own argmax, so its teacher-forced probability and
its maps explain exactly the choice the model made. Penalties that change the distribution
(``repetition_penalty``, ``no_repeat_ngram_size``) would not: the explained logits would no longer
be the ones that picked the token.

The rule, over the answer's tokens ``a_0 .. a_{n-1}`` (their ids and decoded texts):

* a token whose text ends a sentence (stripped, it ends with ``.``, ``!`` or ``?``, or it holds a
  line break) ends the answer; it is kept;
* a loop starts at the first ``i`` that begins a second copy of what came before: of the unit
  just before it (``a_{i-p} .. a_{i-1}`` equals ``a_i .. a_{i+p-1}``: "crane crane",
  "cat, a cat, a") or of an ``n``-gram that occurred earlier (ids). The answer is cut before
  ``a_i`` and then back to its last clause mark (a token that, stripped, ends with ``,``, ``;``
  or ``:``; the mark itself is dropped), so it ends on a whole phrase; without a clause mark it
  ends before ``a_i``;
* trailing tokens that are only whitespace are dropped.
"""

from __future__ import annotations

from typing import Sequence

SENTENCE_END = (".", "!", "?")
CLAUSE_MARK = (",", ";", ":")
LOOP_NGRAM = 3


def ends_sentence(piece: str) -> bool:
    """A token text that ends a sentence: stripped, it ends with ``. ! ?``, or it holds a line break."""
    return "\n" in piece or piece.strip().endswith(SENTENCE_END)


def loop_start(ids: Sequence[int], n: int = LOOP_NGRAM) -> int | None:
    """Where ``ids`` start to repeat themselves, or None: the smallest ``i`` that begins a second
    copy, either of the unit just before it (``ids[i-p:i] == ids[i:i+p]`` for some ``p >= 1``:
    "crane crane", "cat, a cat, a") or of an ``n``-gram that occurred earlier (``ids[i:i+n]``
    also at some ``j < i``, overlaps allowed)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    ids = [int(t) for t in ids]
    seen: set[tuple[int, ...]] = set()
    for i in range(len(ids)):
        if any(ids[i - p:i] == ids[i:i + p] for p in range(1, min(i, len(ids) - i) + 1)):
            return i
        if i + n <= len(ids):
            gram = tuple(ids[i:i + n])
            if gram in seen:
                return i
            seen.add(gram)
    return None


def answer_end(ids: Sequence[int], pieces: Sequence[str], n: int = LOOP_NGRAM) -> int:
    """How many of the generated tokens form the answer (see the module docstring): ``0 <= end
    <= len(ids)``; ``pieces[k]`` is the decoded text of ``ids[k]``."""
    if len(ids) != len(pieces):
        raise ValueError(f"{len(ids)} ids but {len(pieces)} texts")
    end = len(ids)
    for k, p in enumerate(pieces):
        if ends_sentence(p):
            end = k + 1
            break
    start = loop_start(ids[:end], n)
    if start is not None:
        marks = [k for k in range(start) if pieces[k].strip().endswith(CLAUSE_MARK)]
        end = marks[-1] if marks else start
    while end > 0 and not pieces[end - 1].strip():
        end -= 1
    return end


def is_finished(ids: Sequence[int], pieces: Sequence[str], n: int = LOOP_NGRAM) -> bool:
    """Generation can stop: the answer has ended a sentence or started a loop."""
    return any(ends_sentence(p) for p in pieces) or loop_start(ids, n) is not None


__all__ = ["answer_end", "ends_sentence", "is_finished", "loop_start"]
