"""A tiny causal LM (Llama architecture, random weights) with a word-level tokenizer built
in-process, saved to a folder so the real ``hf:<folder>`` loading path runs without a download."""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} <|end|> {% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|> {% endif %}")


def tiny_causal_lm_folder(folder: str | Path, seed: int = 0) -> Path:
    """Save a 2-layer, 64-wide random ``LlamaForCausalLM`` and its tokenizer to ``folder``."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from vlx.prompts import prompts_dir

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    specials = ["<unk>", "<pad>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
    words = set()
    for p in prompts_dir().glob("*.j2"):
        words.update(p.read_text().replace("{", " ").replace("}", " ").split())
    words.update(["the", "region", "at", "holds", "of", "image", "%", "cat", "centre", "left", "right", "top",
                  "bottom", "confidence", "Egyptian", "predicts", "blurring", "it", "lowers", "to", ".", ","])
    words.update(str(i) for i in range(101))
    vocab = {t: i for i, t in enumerate(specials + sorted(words - set(specials)))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", bos_token="<s>",
                                   eos_token="</s>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(folder)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048,
                         bos_token_id=2, eos_token_id=3, pad_token_id=1)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder
