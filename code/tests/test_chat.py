import signal
import subprocess
import sys

import pytest
from test_instruct import always_says

from minigpt import CharTokenizer, gpt2_tokenizer
from minigpt.chat import ALPACA, PLAIN, Conversation, chat_format
from minigpt.instruct import format_prompt
from minigpt.pretrained import save_pretrained

ENC = gpt2_tokenizer()
BLOCK_SIZE = 96
MAX_NEW = 5


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    return {
        "stops": save_pretrained(always_says(ENC.eot_token, BLOCK_SIZE), folder / "stops", prompt_format="alpaca"),
        "bangs": save_pretrained(always_says(ENC.encode("!")[0], BLOCK_SIZE), folder / "bangs", prompt_format="alpaca"),
        "base": save_pretrained(always_says(ENC.encode("!")[0], BLOCK_SIZE), folder / "base"),
    }


def chat_command(model_dir, *options: str) -> list[str]:
    """The chat CLI on the CPU, replies at most MAX_NEW tokens long."""
    return [
        sys.executable,
        "-m",
        "minigpt",
        "chat",
        "--model",
        str(model_dir),
        "--device",
        "cpu",
        "--max-new-tokens",
        str(MAX_NEW),
        *options,
    ]


def run_chat(model_dir, lines: str, *options: str) -> subprocess.CompletedProcess:
    command = chat_command(model_dir, "--seed", "0", *options)
    return subprocess.run(command, input=lines, capture_output=True, text=True, timeout=120)


def test_reply_streams_and_stops_at_the_token_limit(models):
    finished = run_chat(models["bangs"], "Say something.\n")
    assert finished.returncode == 0, finished.stderr
    assert "model> " + "!" * MAX_NEW + "\n" in finished.stdout
    assert "you> Say something.\n" in finished.stdout  # piped input is echoed, so the transcript reads right


def test_reply_stops_at_end_of_text(models):
    finished = run_chat(models["stops"], "Say something.\n")
    assert finished.returncode == 0, finished.stderr
    assert "model> \n" in finished.stdout  # an empty reply: end-of-text came first, and is not printed
    assert "<|endoftext|>" not in finished.stdout


def test_commands(models):
    lines = "/temperature 0.5\n/temperature hot\n/top_p 2\n/top_p 0.8\n/reset\n/what\n/quit\nNever read.\n"
    finished = run_chat(models["bangs"], lines)
    assert finished.returncode == 0, finished.stderr
    out = finished.stdout
    assert "temperature = 0.5" in out and "/temperature needs a number" in out
    assert "top_p must be a number in (0, 1]" in out and "top_p = 0.8" in out
    assert "(conversation forgotten)" in out and "unknown command /what" in out
    assert "model>" not in out  # /quit left before the last line


def test_bad_values_are_refused_and_the_conversation_goes_on(models):
    """/temperature inf was once accepted, and the next message ended the program with a traceback."""
    lines = "/temperature inf\n/temperature nan\n/temperature -1\n/top_p nan\n/top_p 0\nSay something.\n"
    finished = run_chat(models["bangs"], lines)
    assert finished.returncode == 0 and "Traceback" not in finished.stderr, finished.stderr
    out = finished.stdout
    for value in ("inf", "nan", "-1.0"):
        assert f"temperature must be a finite number, 0 (greedy) or more, e.g. 0.7; got {value}" in out
    for value in ("nan", "0.0"):
        assert f"top_p must be a number in (0, 1] (1: no filtering), e.g. 0.9; got {value}" in out
    assert "model> " + "!" * MAX_NEW + "\n" in out  # the settings are unchanged and the model replies


def test_a_reply_that_cannot_be_sampled_leaves_the_chat_going(models):
    """A temperature so small that logits / T overflow: no reply to that message, and the chat goes on."""
    finished = run_chat(models["bangs"], "/temperature 1e-300\nFirst.\n/temperature 0\nSecond.\n")
    assert finished.returncode == 0 and "Traceback" not in finished.stderr, finished.stderr
    assert "(no reply: " in finished.stdout and "try a larger /temperature" in finished.stdout
    assert "model> " + "!" * MAX_NEW + "\n" in finished.stdout  # the second message, greedy


def test_oldest_turns_are_dropped_to_fit_the_context(models):
    # a base model keeps the conversation: each turn is 36 tokens (30 words, a 5-token reply, a newline),
    # and the context leaves 91 beside the reply, so the third message no longer fits beside both
    # earlier turns
    message = "word " * 29 + "word\n"
    finished = run_chat(models["base"], message * 3)
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.count("model> !!!!!") == 3
    assert finished.stdout.count("(dropped the 1 oldest turn(s) to stay within the context window)") == 1
    too_long = run_chat(models["bangs"], "word " * 100 + "\n")
    assert "more than the 91 the context leaves beside the reply" in too_long.stdout


def test_bad_options_are_refused(models):
    finished = run_chat(models["bangs"], "", "--top-p", "0")
    assert finished.returncode == 2 and "top_p must be a number in (0, 1]" in finished.stderr
    finished = run_chat(models["bangs"], "", "--temperature", "inf")
    assert finished.returncode == 2
    assert "temperature must be a finite number, 0 (greedy) or more" in finished.stderr
    finished = run_chat(models["bangs"], "", "--max-new-tokens", str(BLOCK_SIZE))
    assert finished.returncode == 1 and "leave room for a message" in finished.stderr


def test_ctrl_c_leaves_cleanly(models):
    chat = subprocess.Popen(
        chat_command(models["bangs"]), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert chat.stdout.readline().startswith("chatting with")  # the banner: the model is loaded
    assert chat.stdout.readline().startswith("instruction-tuned")  # how it chats
    assert chat.stdout.readline().startswith("commands: /reset")
    assert chat.stdout.read(len("you> ")) == "you> "  # and the chat waits for a message
    chat.send_signal(signal.SIGINT)
    out, err = chat.communicate(timeout=60)
    assert chat.returncode == 0, err
    assert "Traceback" not in err


def test_a_plain_conversation_keeps_the_newest_turns():
    message = "Once upon a time there was a king."
    message_tokens = len(ENC.encode_ordinary(message))
    # room for the new message and one earlier turn (its message, a one-token reply, a newline), not two
    conversation = Conversation(ENC, budget=3 * message_tokens + 3, format=PLAIN)
    for reply in ([1], [2], [3]):
        prompt = conversation.prompt_for(message)
        conversation.add(prompt, reply)
    prompt = conversation.prompt_for(message)
    assert prompt.dropped == 1 and len(conversation.turns) == 1  # of the three turns, only the newest fits
    assert prompt.tokens[-message_tokens:] == prompt.message_tokens
    newline = ENC.encode_ordinary("\n")
    assert prompt.tokens[: message_tokens + 2] == prompt.message_tokens + [3] + newline  # the newest turn
    conversation.reset()
    assert conversation.prompt_for(message).tokens == prompt.message_tokens


def test_an_instruction_model_gets_each_message_on_its_own():
    # tuned on single Alpaca turns: a prompt holding earlier turns would be a format it never saw
    conversation = Conversation(ENC, budget=1000, format=ALPACA)
    first = conversation.prompt_for("Name a colour.")
    conversation.add(first, ENC.encode_ordinary("Blue.") + [ENC.eot_token])
    second = conversation.prompt_for("Name another.")
    assert second.tokens == ENC.encode_ordinary(format_prompt({"instruction": "Name another.", "input": ""}))
    assert second.dropped == 0 and conversation.turns == []


def test_an_instruction_model_chats_in_its_template_and_a_base_model_continues_text(models):
    tuned = run_chat(models["bangs"], "Say something.\n")
    assert "instruction-tuned: each message goes alone into Alpaca's template" in tuned.stdout
    base = run_chat(models["base"], "Once upon a time\n")
    assert base.returncode == 0, base.stderr
    assert "this is a base model: each message is continued as plain text" in base.stdout
    assert "model> " + "!" * MAX_NEW + "\n" in base.stdout


def test_a_character_model_that_cannot_spell_the_template_chats_as_plain_text():
    tokenizer = CharTokenizer.from_text("abc ")  # no 'B': Alpaca's 'Below is an instruction' cannot be written
    format, about = chat_format("alpaca", tokenizer)
    assert format is PLAIN and "cannot write Alpaca's template (character 'B' (position 0)" in about
    assert chat_format("alpaca", ENC)[0] is ALPACA and chat_format("plain", ENC)[0] is PLAIN
    assert Conversation(tokenizer, budget=10, format=PLAIN).separator == []  # it has no newline
    tokenizer = CharTokenizer.from_text("abc \n")
    conversation = Conversation(tokenizer, budget=10, format=PLAIN)
    with pytest.raises(ValueError, match="character 'z'"):  # the chat prints this and goes on
        conversation.prompt_for("abz")
    prompt = conversation.prompt_for("ab")
    conversation.add(prompt, tokenizer.encode("c"))
    assert tokenizer.decode(conversation.prompt_for("ba").tokens) == "abc\nba"  # turns on their own lines
