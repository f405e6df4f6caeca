"""A tiny causal LM with a locally trained tokenizer, saved the way a real checkpoint is.

Tests and benchmarks load it back only through `AutoTokenizer/AutoModelForCausalLM.from_pretrained`,
so the code under test runs the same path it runs on a real PRM. The weights are random (seeded):
the scores mean nothing, but they are real forward passes of a real transformer.
"""

from __future__ import annotations

from pathlib import Path

# A ChatML-like template of our own: one block per message, then the assistant header.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|turn|>{{ message['role'] }}\n{{ message['content'] }}<|end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|turn|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ["<|pad|>", "<|turn|>", "<|end|>"]

_CORPUS = """
You judge one step of a program that answers a user query with API calls.
Answer yes when the step is likely to lead to a solution and no when it is not.
yes
no
The step calls the search endpoint, parses the JSON response and prints the movie id.
import requests
response = requests.get(url, params={"query": "Titanic"}, headers=headers)
data = response.json()
print(data["results"][0]["id"])
Previous steps and their output follow. The output may be truncated.
The query asks for the director of a film, the cast of a show and the weather in a city.
def main(): return [item["name"] for item in items if item.get("score", 0) > 0.5]
Error: KeyError, Traceback (most recent call last), status code 404, not found.
system user assistant tool API documentation parameters required optional default
"""


def _training_lines(repeat: int, extra_corpus: str = "") -> list[str]:
    lines = [line for line in (_CORPUS + extra_corpus).splitlines() if line.strip()]
    # "yes" and "no" alone on a line make BPE merge each into one whole token.
    return (lines + ["yes", "no"] * 8) * repeat


def build_tiny_lm(
    directory: str | Path,
    *,
    hidden_size: int = 32,
    num_layers: int = 2,
    vocab_size: int = 400,
    seed: int = 0,
    extra_corpus: str = "",
) -> Path:
    """Train a byte-level BPE tokenizer, build a random Qwen2 model and save both to `directory`.

    `extra_corpus` adds text the tokenizer should encode compactly (e.g. a training set's prompts).
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_training_lines(repeat=4, extra_corpus=extra_corpus), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        pad_token="<|pad|>",
        eos_token="<|end|>",
        additional_special_tokens=["<|turn|>"],
        chat_template=CHAT_TEMPLATE,
    )
    tokenizer.save_pretrained(target)

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
        initializer_range=0.3,  # wide enough that different prompts get visibly different scores
    )
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(target)
    return target
