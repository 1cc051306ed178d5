"""Chat with an instruction-tuned model in a terminal (Chapter 7).

    python -m minigpt.chat --model DIR       # a model saved with minigpt.pretrained.save_pretrained
    python -m minigpt.chat --model gpt2      # or a Hugging Face Hub name (needs the network)

Each message is written into Alpaca's prompt template, the reply is streamed token by token and
ends at end-of-text (or after --max-new-tokens). Alpaca's format has a single turn, so earlier turns
go before the new one as context, each as instruction and response, separated by a blank line; when
the conversation no longer fits the model's context window beside the reply's budget, the oldest
turns are dropped. Commands: /reset, /temperature T, /top_p P, /quit. Ctrl-D or Ctrl-C leaves.
"""

from __future__ import annotations

import argparse
import codecs
import sys
from typing import NamedTuple

import torch

from .generate import stream
from .instruct import format_prompt
from .sampling import SamplingRule
from .tokenizer import gpt2_tokenizer
from .utils import choose_device

HELP = "commands: /reset (forget the conversation), /temperature T, /top_p P, /quit (or Ctrl-D)"
TURN_SEPARATOR = "\n\n"


class Prompt(NamedTuple):
    tokens: list[int]  # what the model is given: the turns kept so far, then the new message
    message_tokens: list[int]  # the new message in the template (the end of `tokens`)
    dropped: int  # how many of the oldest turns were dropped to make it fit


class Conversation:
    """The turns so far, and prompts for new messages that fit in `budget` tokens."""

    def __init__(self, tokenizer, budget: int):
        self.tokenizer, self.budget = tokenizer, budget
        self.separator = tokenizer.encode_ordinary(TURN_SEPARATOR)
        self.turns: list[list[int]] = []  # each finished turn as tokens: its message, then the reply

    def prompt_for(self, message: str) -> Prompt:
        """The prompt for a new message, after dropping the oldest turns that no longer fit."""
        new = self.tokenizer.encode_ordinary(format_prompt({"instruction": message, "input": ""}))
        if len(new) > self.budget:
            raise ValueError(
                f"the message takes {len(new)} tokens with its template, more than the {self.budget} "
                "the context leaves beside the reply; send a shorter one (or lower --max-new-tokens)"
            )
        dropped = 0
        while sum(len(turn) + len(self.separator) for turn in self.turns[dropped:]) + len(new) > self.budget:
            dropped += 1
        del self.turns[:dropped]
        context = [token for turn in self.turns for token in turn + self.separator]
        return Prompt(context + new, new, dropped)

    def add(self, prompt: Prompt, reply: list[int]) -> None:
        """Remember a finished turn: the message of `prompt` and the model's reply to it."""
        self.turns.append(prompt.message_tokens + reply)

    def reset(self) -> None:
        self.turns.clear()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m minigpt.chat", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--model", required=True, help="a directory saved by save_pretrained, or a Hub name (gpt2); required"
    )
    p.add_argument(
        "--temperature", type=float, default=0.7, help="0: always the likeliest token (greedy) (default: 0.7)"
    )
    p.add_argument(
        "--top-p",
        type=float,
        default=0.9,
        help="sample from the smallest set of this much mass (default: 0.9)",
    )
    p.add_argument(
        "--max-new-tokens", type=int, default=100, help="the longest reply, in tokens (default: 100)"
    )
    p.add_argument(
        "--seed", type=int, default=None, help="make the replies reproducible (default: none, random)"
    )
    p.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    return p


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    for problem in (_check("temperature", args.temperature), _check("top_p", args.top_p)):
        if problem:
            p.error(problem)
    return args


# What each setting may be, for the error that refuses another value (SamplingRule decides).
VALID_SETTINGS = {
    "temperature": "a finite number, 0 (greedy) or more, e.g. 0.7",
    "top_p": "a number in (0, 1] (1: no filtering), e.g. 0.9",
}


def _check(setting: str, value: float) -> str | None:
    """None if `value` is a valid temperature or top_p, else the error to show."""
    try:
        SamplingRule(**{setting: value})
    except ValueError:
        return f"{setting} must be {VALID_SETTINGS[setting]}; got {value}"
    return None


def _set(setting: str, argument: str, settings: dict) -> str:
    """Apply '/temperature 0.5' or '/top_p 0.9'; return what to tell the user."""
    try:
        value = float(argument)
    except ValueError:
        return f"/{setting} needs a number, e.g. /{setting} {settings[setting]}"
    problem = _check(setting, value)
    if problem:
        return problem
    settings[setting] = value
    return f"{setting} = {value}"


def reply(
    model: torch.nn.Module, prompt: Prompt, settings: dict, max_new_tokens: int, generator
) -> list[int]:
    """Stream the model's reply to stdout as it is generated; return its tokens (end-of-text excluded)."""
    tokenizer = gpt2_tokenizer()
    tokens = stream(
        model,
        torch.tensor([prompt.tokens], device=next(model.parameters()).device),
        max_new_tokens,
        temperature=settings["temperature"],
        top_p=settings["top_p"],
        stop_tokens=[tokenizer.eot_token],
        generator=generator,
    )
    # A character can be split over two byte-level tokens: print only complete characters.
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    reply_tokens = []
    print("model> ", end="", flush=True)
    for token in tokens:
        reply_tokens.append(token)
        print(decoder.decode(tokenizer.decode_single_token_bytes(token)), end="", flush=True)
    print(decoder.decode(b"", final=True))
    return reply_tokens


def chat(model: torch.nn.Module, args: argparse.Namespace) -> None:
    """The read-reply loop. Returns at /quit or at the end of the input (Ctrl-D)."""
    conversation = Conversation(gpt2_tokenizer(), model.config.block_size - args.max_new_tokens)
    settings = {"temperature": args.temperature, "top_p": args.top_p}
    generator = torch.Generator().manual_seed(args.seed) if args.seed is not None else None
    while True:
        try:
            line = input("you> ").strip()
        except EOFError:  # Ctrl-D, or the end of piped input
            print()
            return
        if not sys.stdin.isatty():  # no terminal echoed what was read: show it, so a transcript reads right
            print(line)
        command, _, argument = line.partition(" ")
        if not line:
            continue
        if command == "/quit":
            return
        if command == "/reset":
            conversation.reset()
            print("(conversation forgotten)")
        elif command in ("/temperature", "/top_p"):
            print(_set(command[1:], argument.strip(), settings))
        elif command.startswith("/"):
            print(f"unknown command {command}; {HELP}")
        else:
            try:
                prompt = conversation.prompt_for(line)
            except ValueError as error:
                print(error)
                continue
            if prompt.dropped:
                print(f"(dropped the {prompt.dropped} oldest turn(s) to stay within the context window)")
            try:
                reply_tokens = reply(model, prompt, settings, args.max_new_tokens, generator)
            except RuntimeError as error:  # e.g. a temperature so small that logits / T overflow to inf
                print(f"\n(no reply: {error}; try a larger /temperature, or /temperature 0 for greedy)")
                continue
            conversation.add(prompt, reply_tokens)


def load_chat_model(name_or_dir: str, max_new_tokens: int, device: torch.device) -> torch.nn.Module:
    """The model to chat with; exits with a message if it cannot be loaded or leaves no room to chat."""
    from .pretrained import from_pretrained

    try:
        model = from_pretrained(name_or_dir, device=device)
    except (OSError, ValueError) as error:
        sys.exit(f"error: could not load the model {name_or_dir!r}: {error}")
    if max_new_tokens >= model.config.block_size:
        sys.exit(
            f"error: --max-new-tokens {max_new_tokens} leaves no room for a message in the "
            f"model's context of {model.config.block_size} tokens"
        )
    return model


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    device = choose_device(args.device)
    try:
        model = load_chat_model(args.model, args.max_new_tokens, device)
        context = model.config.block_size
        print(f"chatting with {args.model} on {device} (context {context} tokens); {HELP}", flush=True)
        chat(model, args)
    except KeyboardInterrupt:  # Ctrl-C: leave without a traceback
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
