"""Every command in the README's shell blocks runs as written, or says why it cannot run here.

A command that cannot run here says so in the README itself: it names a placeholder path
(``path/to/...``, ``...``) for a model or data that is not here, or its comment says what it
``needs`` (GPUs, the network). The rest run in a fresh folder, with ``../shared/data`` where the
README means it; the only change is ``SHORTER``: fewer steps or questions, which changes how long
a command runs, not whether it runs.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from interp.cli import main
from tests.conftest import SHARED

pytestmark = pytest.mark.slow  # every README command, end to end

README = Path(__file__).resolve().parents[1] / "README.md"
# What a make target runs: `make report` is `interp run --out reports` (Makefile); `make test` is CI itself.
MAKE = {"make report": ".venv/bin/interp run --out reports", "make test": None}
# Commands that read what an earlier one writes, and that earlier command (made to run here).
BEFORE = {"--rescore": "interp accuracy --benchmark mmlu --data ../shared/data/mmlu --limit 1 --subjects anatomy "
                       "--max-new-tokens 8 --results results/mmlu"}


def readme_commands() -> list[tuple[str, str]]:
    """(command, its comment) for every command line of the README's bash blocks."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
    found = []
    for block in blocks:
        for command in block.replace("\\\n", " ").splitlines():
            text, _, comment = command.partition("  #")
            if text.strip():
                found.append((" ".join(text.split()), comment.strip()))
    return found


def not_here(command: str, comment: str) -> str | None:
    if "path/to/" in command or " ... " in f"{command} ":
        return "names a model or data that is not here (a placeholder path)"
    if "needs" in comment:
        return comment
    return None


def as_run_here(command: str) -> list[str] | None:
    """The command's arguments for ``interp.cli.main``; ``None`` for one that is not `interp`."""
    for target, meaning in MAKE.items():
        if command == target or command.startswith(target + " "):
            if meaning is None:
                return None
            command = meaning + command[len(target):]
    if not command.startswith(".venv/bin/interp "):
        return None
    command = "interp " + command[len(".venv/bin/interp "):]
    return shorter(shlex.split(command.replace("../shared/data", str(SHARED)))[1:])


def shorter(argv: list[str]) -> list[str]:
    """The same command over fewer steps or questions."""
    if "--steps" in argv:
        argv[argv.index("--steps") + 1] = "3"
    if argv[:1] == ["run"] and "--model" not in argv:
        argv += ["--questions", "2", "--cot-tokens", "8", "--max-new-tokens", "4"]
    if argv[:3] == ["accuracy", "--benchmark", "structured"] and "--limit" not in argv:
        argv += ["--limit", "1"]
    if argv[:1] == ["accuracy"] and "--scoring" in argv:  # a full benchmark scored: two questions of it
        if "--limit" in argv:
            argv[argv.index("--limit") + 1] = "2"
        else:
            argv += ["--limit", "2"]
        if "mmlu" in argv and "--subjects" not in argv:
            argv += ["--subjects", "anatomy"]
    return argv


def without_out(argv: list[str] | None) -> list[str] | None:
    """The arguments less ``--out DIR``: where a command writes does not change whether it runs."""
    if argv is None or "--out" not in argv:
        return argv
    at = argv.index("--out")
    return argv[:at] + argv[at + 2:]


COMMANDS = readme_commands()


def test_the_readme_has_commands_and_each_is_run_or_says_why_not():
    assert len(COMMANDS) >= 10
    for command, comment in COMMANDS:
        assert not_here(command, comment) or as_run_here(command) is not None or command.startswith(
            ("make test", ".venv/bin/interp-lm-eval")), f"{command!r} is neither run by this test nor marked"


@pytest.mark.parametrize("command, comment", COMMANDS, ids=[c[:60] for c, _ in COMMANDS])
def test_a_readme_command_runs_as_written(command, comment, tmp_path, monkeypatch, capsys):
    reason = not_here(command, comment)
    if reason:
        pytest.skip(reason)
    argv = as_run_here(command)
    if argv is None:
        pytest.skip("make test is what CI runs; interp-lm-eval runs in tests/test_lmeval.py")
    if command == "make report":
        pytest.skip("the main job, run and its pages checked by tests/test_report.py::test_main_job_writes_an_offline_report")
    earlier = next((c for c, _ in COMMANDS[: COMMANDS.index((command, comment))]
                    if without_out(as_run_here(c)) == without_out(argv)), None)
    if earlier is not None:
        pytest.skip(f"the same command as {earlier!r}, run already (where it writes aside)")
    if str(SHARED) in " ".join(argv) and not SHARED.is_dir():
        pytest.skip("../shared/data not found")
    monkeypatch.chdir(tmp_path)
    for key, before in BEFORE.items():
        if key in argv:
            assert main(shlex.split(before.replace("../shared/data", str(SHARED)))[1:]) == 0
    if argv[:1] == ["finetuning"]:  # it compares with what the README's finetune command writes
        finetune = next(c for c, _ in COMMANDS if " finetune " in f"{c} " and "stories260K" in c)
        assert main(as_run_here(finetune)) == 0  # type: ignore[arg-type]
    try:
        code = main(argv)
    except SystemExit as stop:  # --help
        code = stop.code
    assert code in (0, None), capsys.readouterr().err[-2000:]
