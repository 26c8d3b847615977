"""Every command an error message suggests parses with the real `medeval` CLI."""
import re
import shlex

import pytest

from medtasks import cli, spec
from medtasks.common import UsageError
from medtasks.resolve import how_to_prepare, resolve
from medtasks.sources import hints, hub, hub_records

COMMAND = re.compile(r"`(medeval [^`]+)`")


def parses(command: str) -> bool:
    """Whether `command` is accepted by the real parser and names a runnable subcommand."""
    try:
        args = cli.build_parser().parse_args(shlex.split(command)[1:])
    except SystemExit:
        return False
    return callable(getattr(args, "func", None))


def suggested(messages) -> list[str]:
    return sorted({command for message in messages for command in COMMAND.findall(message)})


def missing_data_messages(tmp_path, monkeypatch) -> list[str]:
    """What the loader says, offline, for every task whose data is missing."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("MEDTASKS_DATA", raising=False)
    messages = []
    for benchmark, language in spec.task_pairs():
        with pytest.raises(UsageError) as err:
            resolve(benchmark, language, "test", tmp_path)
        messages.append(str(err.value))
    return messages


def test_the_parser_check_can_fail():
    assert not parses("medeval import --hub medqa")  # the old offline hint
    assert not parses("medeval translate medqa fr")
    assert parses("medeval import --hub --benchmarks medqa")


def test_hint_builders_give_commands_that_parse():
    commands = [hints.import_data(), hints.import_data(["medqa"], ["en"], folder="my data"),
                hints.import_bioinstructqa(), hints.import_bioinstructqa(["medqa", "pubmedqa"], ["fr", "zh"]),
                hints.import_hub(), hints.import_hub(["medqa5"], ["ar"]), hints.translate(["mmlu_anatomy"], ["ru"])]
    assert [c for c in commands if not parses(c)] == []
    assert hints.import_data(["medqa"], folder="my data") == "medeval import --data 'my data' --benchmarks medqa"


def test_every_command_in_the_loader_and_hub_messages_parses(tmp_path, monkeypatch):
    messages = [how_to_prepare(b, l) for b, l in spec.task_pairs()]
    messages += [hub.OFFLINE_HELP] + missing_data_messages(tmp_path, monkeypatch)
    with pytest.raises(UsageError) as err:
        hub_records(["truthfulqa_med"], ["fr"])
    messages.append(str(err.value))
    commands = suggested(messages)
    assert len(commands) >= 30  # one per benchmark and language kind at least: the messages do suggest commands
    assert [c for c in commands if not parses(c)] == []
    assert "medeval import --hub --benchmarks medqa" in commands


def test_a_missing_translation_leads_with_translation_not_the_english_layout(tmp_path, monkeypatch):
    message = next(m for m in missing_data_messages(tmp_path, monkeypatch) if m.startswith("medqa_fr:"))
    first = COMMAND.search(message).group(1)
    assert first == "medeval translate --benchmarks medqa --languages fr"
    assert message.index("medeval import --bioinstructqa data.zip --benchmarks medqa --languages fr") < \
        message.index("HF_HUB_OFFLINE")
