"""A tiny causal LM that has learnt one answer by heart: given one exact chat, it writes one scripted completion.

Built from `build_tiny_lm` (a tokenizer trained on the chat itself, so the prompt is short in tokens),
then overfit for a few hundred optimizer steps on prompt -> completion + end of turn, and saved with
`save_pretrained`; the code under test loads it back only through `from_pretrained`, like any checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tests.support.tiny_lm import build_tiny_lm


def build_scripted_lm(
    directory: str | Path,
    messages: Sequence[dict[str, str]],
    completion: str,
    *,
    max_steps: int = 300,
    target_loss: float = 0.002,
) -> Path:
    """Save to `directory` a model that answers `messages` (chat template applied) with `completion`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    chat_text = "\n".join(message["content"] for message in messages)
    target = build_tiny_lm(directory, hidden_size=64, vocab_size=1500, extra_corpus=f"{chat_text}\n{completion}\n" * 2)
    tokenizer = AutoTokenizer.from_pretrained(target)
    model = AutoModelForCausalLM.from_pretrained(target)
    prompt_text = tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
    prompt = tokenizer.encode(prompt_text, add_special_tokens=False)
    answer = tokenizer.encode(completion, add_special_tokens=False) + [tokenizer.eos_token_id]
    input_ids = torch.tensor([prompt + answer])
    labels = torch.tensor([[-100] * len(prompt) + answer])
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a model this small trains fastest on one core, more so on a busy machine
    try:
        for _ in range(max_steps):
            loss = model(input_ids=input_ids, labels=labels).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if loss.item() < target_loss:
                break
        else:
            raise AssertionError(f"the scripted model did not learn its answer (loss {loss.item():.4f})")
    finally:
        torch.set_num_threads(threads)
    model.eval()
    model.save_pretrained(target)
    return target
