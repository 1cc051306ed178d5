"""Chat with a model in a terminal (Chapter 8): `minigpt chat --model FOLDER` (see minigpt.cli).

The model folder says how to talk to the model (minigpt.pretrained.load_model):

- An instruction-tuned model ("alpaca") gets each message in Alpaca's prompt template, on its own,
  and its reply ends at end-of-text (or after the reply's budget of tokens). Alpaca's format has a
  single turn and the model was tuned on single turns only, so earlier turns are not shown to it: a
  prompt it never saw in training would be a guess at a format, not a conversation.
- A base model ("plain"), or one whose characters cannot spell the template, continues the text: each
  message is appended to the conversation on a new line and the model writes what follows. When the
  conversation no longer fits the model's context window beside the reply's budget, the oldest turns
  are dropped.
 Commands: /reset, /temperature T, /top_p P, /quit. Ctrl-D or Ctrl-C leaves.
"""

from __future__ import annotations

import codecs
import sys
from collections.abc import Callable
from typing import NamedTuple

import torch

from .generate import stream
from .instruct import format_prompt
from .sampling import SamplingRule

HELP = "commands: /reset (forget all), /temperature T, /top_p P, /quit (or Ctrl-D)"


class Prompt(NamedTuple):
    tokens: list[int]  # what the model is given: the turns kept so far, then the new message
    message_tokens: list[int]  # the new message in the template (the end of `tokens`)
    dropped: int  # how many of the oldest turns were dropped to make it fit


class ChatFormat(NamedTuple):
    """How a message is written for the model, and what goes between turns."""

    name: str  # "alpaca" or "plain"
    template: Callable[[str], str]
    separator: str
    keeps_turns: bool  # whether earlier turns go before a new message


# Alpaca: one turn, as in training (its separator only matters if turns were kept)
ALPACA = ChatFormat("alpaca", lambda message: format_prompt({"instruction": message, "input": ""}), "", False)
PLAIN = ChatFormat("plain", lambda message: message, "\n", True)


def chat_format(prompt_format: str, tokenizer) -> tuple[ChatFormat, str]:
    """The format to chat in, and a line that says what it means for the user.

    An "alpaca" model whose tokenizer cannot spell the template (a character model trained on text
    without '#') chats as plain continuation, and the line says why.
    """
    plain = "a base model: each message is continued as plain text, not answered as an instruction"
    if prompt_format != "alpaca":
        return PLAIN, f"this is {plain}"
    try:
        tokenizer.encode_ordinary(ALPACA.template("?"))
    except ValueError as error:
        return PLAIN, f"its tokenizer cannot write Alpaca's template ({error}), so it chats as {plain}"
    return ALPACA, "instruction-tuned: each message goes alone into Alpaca's template, as trained"


class Conversation:
    """The turns so far, and prompts for new messages that fit in `budget` tokens."""

    def __init__(self, tokenizer, budget: int, format: ChatFormat = ALPACA):
        self.tokenizer, self.budget, self.format = tokenizer, budget, format
        try:
            self.separator = tokenizer.encode_ordinary(format.separator)
        except ValueError:  # a character model whose text had no newline: turns follow each other directly
            self.separator = []
        self.turns: list[list[int]] = []  # each finished turn as tokens: its message, then the reply

    def prompt_for(self, message: str) -> Prompt:
        """The prompt for a new message, after dropping the oldest turns that no longer fit.

        Raises ValueError for a message the tokenizer cannot encode or that cannot fit.
        """
        new = self.tokenizer.encode_ordinary(self.format.template(message))
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
        """Remember a finished turn, the message of `prompt` and the model's reply to it, if the format
        keeps turns."""
        if self.format.keeps_turns:
            self.turns.append(prompt.message_tokens + reply)

    def reset(self) -> None:
        self.turns.clear()


# What each setting may be, for the error that refuses another value (SamplingRule decides).
VALID_SETTINGS = {
    "temperature": "a finite number, 0 (greedy) or more, e.g. 0.7",
    "top_p": "a number in (0, 1] (1: no filtering), e.g. 0.9",
}


def check_setting(setting: str, value: float) -> str | None:
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
    problem = check_setting(setting, value)
    if problem:
        return problem
    settings[setting] = value
    return f"{setting} = {value}"


def reply(
    model: torch.nn.Module, tokenizer, prompt: Prompt, settings: dict, max_new_tokens: int, generator
) -> list[int]:
    """Stream the model's reply to stdout as it is generated; return its tokens (end-of-text excluded)."""
    stop = [] if tokenizer.eot_token is None else [tokenizer.eot_token]
    tokens = stream(
        model,
        torch.tensor([prompt.tokens], device=next(model.parameters()).device),
        max_new_tokens,
        temperature=settings["temperature"],
        top_p=settings["top_p"],
        stop_tokens=stop,
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


def chat(
    model: torch.nn.Module,
    tokenizer,
    format: ChatFormat,
    settings: dict,
    max_new_tokens: int,
    generator: torch.Generator | None = None,
) -> None:
    """The read-reply loop, with `settings` {"temperature": T, "top_p": P}. Returns at /quit or at the
    end of the input (Ctrl-D). A bad command or message prints why, and the conversation goes on."""
    conversation = Conversation(tokenizer, model.config.block_size - max_new_tokens, format)
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
            except ValueError as error:  # too long, or a character the model's vocabulary lacks
                print(error)
                continue
            if prompt.dropped:
                print(f"(dropped the {prompt.dropped} oldest turn(s) to stay within the context window)")
            try:
                reply_tokens = reply(model, tokenizer, prompt, settings, max_new_tokens, generator)
            except RuntimeError as error:  # e.g. a temperature so small that logits / T overflow to inf
                print(f"\n(no reply: {error}; try a larger /temperature, or /temperature 0 for greedy)")
                continue
            conversation.add(prompt, reply_tokens)


if __name__ == "__main__":  # the old entry point; importing minigpt.cli here would make an import cycle
    sys.exit("python -m minigpt.chat is now `minigpt chat` (or `python -m minigpt chat`): run that")
