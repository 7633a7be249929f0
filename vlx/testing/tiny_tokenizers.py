"""Small tokenizers of the real models' classes (byte-level BPE for CLIP / GPT-2 / Qwen2,
Metaspace BPE for Llama, WordPiece for BERT), trained in-process on vlx's prompt texts so the
words vlx sends are a few tokens each; special tokens are the real repositories' (same strings,
same order). Nothing is downloaded."""

from __future__ import annotations

import json
from functools import lru_cache

_EXTRA = ("a photo of a cat dog car bird thing what colour is it ? describe the image region picture "
          "0 1 2 3 4 5 6 7 8 9 . , : ; ( ) % < > | _ - ' \" red blue green left right top bottom centre")


@lru_cache(maxsize=1)
def _corpus() -> tuple[str, ...]:
    from vlx.prompts import prompts_dir

    texts = [p.read_text(errors="replace") for p in sorted(prompts_dir().rglob("*")) if p.is_file()]
    return tuple(texts + [_EXTRA, _EXTRA.upper(), _EXTRA.capitalize()])


def train_bpe(kind: str, vocab_size: int = 400) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """``(vocab, merges)`` of a BPE trained on the corpus. ``kind``: ``"bytelevel"`` (GPT-2,
    Qwen2), ``"clip"`` (byte-level with CLIP's ``</w>`` word ends) or ``"metaspace"`` (Llama)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    suffix = {"clip": "</w>"}.get(kind)
    tok = Tokenizer(models.BPE(end_of_word_suffix=suffix) if suffix else models.BPE())
    if kind == "metaspace":
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁")
        alphabet: list[str] = []
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    kw = {"end_of_word_suffix": suffix} if suffix else {}
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=alphabet, show_progress=False, **kw)
    tok.train_from_iterator(_corpus(), trainer)
    model = json.loads(tok.to_str())["model"]
    return dict(model["vocab"]), [tuple(m) for m in model["merges"]]


def _shifted(vocab: dict[str, int], first: list[str]) -> dict[str, int]:
    """``first`` at ids ``0..k-1``, then ``vocab`` in its order."""
    out = {t: i for i, t in enumerate(first)}
    for t, _ in sorted(vocab.items(), key=lambda kv: kv[1]):
        if t not in out:
            out[t] = len(out)
    return out


def clip_tokenizer():
    """``CLIPTokenizer``: ``<|startoftext|>`` / ``<|endoftext|>`` as the last two ids (as in
    openai/clip-vit-*: 49406 / 49407, so the highest id marks the end), pad = eos, max length 77."""
    from transformers import CLIPTokenizer

    vocab, merges = train_bpe("clip")
    vocab = _shifted(vocab, [])
    vocab["<|startoftext|>"], vocab["<|endoftext|>"] = len(vocab), len(vocab) + 1
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)


SMOLLM2_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<repo_name>", "<reponame>", "<file_sep>",
                    "<filename>", "<gh_stars>", "<issue_start>", "<issue_comment>", "<issue_closed>",
                    "<jupyter_start>", "<jupyter_text>", "<jupyter_code>", "<jupyter_output>", "<jupyter_script>",
                    "<empty_output>"]


def smollm2_tokenizer(chat_template: str):
    """``GPT2Tokenizer`` shaped like SmolLM2's: the 17 special tokens at ids 0-16, bos
    ``<|im_start|>``, eos and pad ``<|im_end|>``, unk ``<|endoftext|>``."""
    from transformers import GPT2Tokenizer

    vocab, merges = train_bpe("bytelevel")
    tok = GPT2Tokenizer(vocab=_shifted(vocab, SMOLLM2_SPECIALS), merges=merges, unk_token="<|endoftext|>",
                        bos_token="<|im_start|>", eos_token="<|im_end|>", pad_token="<|im_end|>",
                        model_max_length=8192)
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.chat_template = chat_template
    return tok


QWEN2_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                  "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
                  "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]


def qwen2_tokenizer(chat_template: str):
    """``Qwen2Tokenizer`` shaped like Qwen2-VL's: BPE then the 14 special tokens in the real
    order (``<|endoftext|>`` … ``<|video_pad|>``), no bos, eos ``<|im_end|>``, pad ``<|endoftext|>``."""
    from transformers import Qwen2Tokenizer

    vocab, merges = train_bpe("bytelevel")
    vocab = _shifted(vocab, [])
    for t in QWEN2_SPECIALS:
        vocab[t] = len(vocab)
    tok = Qwen2Tokenizer(vocab=vocab, merges=merges, unk_token=None, bos_token=None, eos_token="<|im_end|>",
                         pad_token="<|endoftext|>", model_max_length=32768)
    tok.add_special_tokens({"additional_special_tokens": QWEN2_SPECIALS[1:]})
    tok.chat_template = chat_template
    return tok


def llama_tokenizer(extra: tuple[str, ...] = ("<image>", "<pad>")):
    """``LlamaTokenizer`` shaped like LLaVA-1.5's: ``<unk>`` 0, ``<s>`` 1, ``</s>`` 2, Metaspace
    BPE, then ``extra`` added tokens (LLaVA: ``<image>`` 32000, ``<pad>`` 32001 in the real one)."""
    from transformers import LlamaTokenizer

    vocab, merges = train_bpe("metaspace")
    tok = LlamaTokenizer(vocab=_shifted(vocab, ["<unk>", "<s>", "</s>"]), merges=merges, legacy=False,
                         add_bos_token=True, model_max_length=4096, padding_side="left")
    tok.add_tokens([t for t in extra if t != "<pad>"], special_tokens=True)
    if "<pad>" in extra:
        tok.add_special_tokens({"pad_token": "<pad>"})
    return tok


def bert_tokenizer():
    """``BertTokenizer`` shaped like BLIP's (bert-base-uncased plus ``[DEC]`` as bos and
    ``[ENC]``, added after the vocabulary): lower-case WordPiece over the corpus's words."""
    import re

    from transformers import BertTokenizer

    words = sorted({w for t in _corpus() for w in re.findall(r"\w+|[^\w\s]", t.lower())})
    chars = sorted({c for w in words for c in w})
    vocab = _shifted({t: i for i, t in enumerate(words + chars + [f"##{c}" for c in chars])},
                     ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    tok = BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=512)
    tok.add_special_tokens({"bos_token": "[DEC]", "additional_special_tokens": ["[ENC]"]})
    return tok
