"""The README front page cannot rot: its transcripts are run and compared line by line, and every
``volume ...`` command it shows is checked against that command's ``--help`` (the command exists,
each option exists, a choice is one of the option's choices, no more arguments than it takes).

The same check runs over the ``volume`` command lines of the pages in ``docs/``.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DATA = ROOT.parent / "shared" / "data"

#: The front page's length limit (issue 17: "under 200 lines").
FRONT_PAGE_LINES = 200

@dataclass(frozen=True)
class Block:
    """A fenced code block of a Markdown file: its marker comment (if any), language and lines."""

    path: Path
    line: int
    marker: str
    lang: str
    lines: tuple[str, ...]


def blocks(path: Path) -> list[Block]:
    """Every fenced block of ``path``, with the HTML comment on the line before its fence."""
    text = path.read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(text):
        if text[i].startswith("```"):
            lang = text[i][3:].strip()
            marker = text[i - 1].strip() if i and text[i - 1].startswith("<!--") else ""
            j = i + 1
            while j < len(text) and not text[j].startswith("```"):
                j += 1
            found.append(Block(path, i + 1, marker, lang, tuple(text[i + 1:j])))
            i = j + 1
        else:
            i += 1
    return found


def volume_lines(path: Path) -> list[tuple[int, str]]:
    """``(line number, command)`` of every ``$ volume ...`` line in the code blocks of ``path``."""
    out = []
    for b in blocks(path):
        for k, line in enumerate(b.lines):
            if line.startswith("$ volume ") or line.strip() == "$ volume":
                out.append((b.line + 1 + k, line[2:]))
    return out


def environment() -> dict[str, str]:
    """The environment commands run in: this interpreter's ``volume`` first on PATH, no colours."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.pop("FORCE_COLOR", None)
    env["NO_COLOR"] = "1"
    return env


def absolute(command: str) -> str:
    """The command with the repository's relative paths (examples/, ../shared/data) made absolute,
    so it can run in a temporary folder as it runs from the repository's folder."""
    command = command.replace("../shared/data/", f"{DATA}/")
    return re.sub(r"(?<![\w/.])examples/", f"{ROOT}/examples/", command)


def run(command: str, cwd: Path) -> list[str]:
    """Run one shell line; its stdout and stderr merged, as a terminal shows them, lines stripped
    of trailing blanks (``volume ls`` pads its last column)."""
    proc = subprocess.run(["bash", "-c", absolute(command)], cwd=cwd, env=environment(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    assert proc.returncode == 0, f"{command}: exit {proc.returncode}\n{proc.stdout}"
    return [line.rstrip() for line in proc.stdout.splitlines()]


def needs_data(text: str) -> None:
    if "../shared/data" in text and not DATA.is_dir():
        pytest.skip("the real series of ../shared/data are not beside the repository")


# --- the front page ----------------------------------------------------------------------------

def test_readme_is_a_front_page() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < FRONT_PAGE_LINES, f"README.md has {len(lines)} lines: the manual belongs in docs/"
    headings = [line for line in lines if line.startswith("## ")]
    assert {"## Set up", "## A tour", "## Conventions in brief", "## Documentation"} <= set(headings)


def test_readme_shows_the_two_set_up_commands_and_a_dwi_conversion() -> None:
    text = README.read_text(encoding="utf-8")
    assert "pip install -e . && python examples/quickstart.py" in text
    assert re.search(r"<!-- test-command -->\n```bash\npip install -e \"\.\[[^\]]*\bdocs\b[^\]]*\]\" && "
                     r"python -m pytest -q -p no:cacheprovider\n```\n<!-- /test-command -->", text)
    tour = [b for b in blocks(README) if b.lang == "console" and not b.marker]
    assert any(len(b.lines) == 11 and all(line.startswith("$ volume ") for line in b.lines) for b in tour)
    transcripts = [b for b in blocks(README) if b.marker == "<!-- transcript -->"]
    shown = "\n".join(line for b in transcripts for line in b.lines)
    assert ".bval" in shown and ".bvec" in shown and "$ volume convert" in shown


@pytest.mark.parametrize("block", [b for b in blocks(README) if b.marker.startswith("<!-- output of:")],
                         ids=lambda b: f"README.md:{b.line}")
def test_readme_output_is_what_the_command_prints(block: Block, tmp_path: Path) -> None:
    """A block marked ``<!-- output of: CMD -->`` is exactly what CMD prints (run in a new folder)."""
    command = block.marker.removeprefix("<!-- output of:").removesuffix("-->").strip()
    command = command.replace("python ", f"{shlex.quote(sys.executable)} ", 1) if command.startswith("python ") else command
    assert run(command, tmp_path) == [line.rstrip() for line in block.lines]


@pytest.mark.parametrize("block", [b for b in blocks(README) if b.marker == "<!-- transcript -->"],
                         ids=lambda b: f"README.md:{b.line}")
def test_readme_transcript_runs_as_shown(block: Block, tmp_path: Path) -> None:
    """A block marked ``<!-- transcript -->``: each ``$ command`` runs in turn (in one new folder)
    and prints exactly the lines that follow it."""
    needs_data("\n".join(block.lines))
    steps: list[tuple[str, list[str]]] = []
    for line in block.lines:
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            assert steps, f"README.md:{block.line}: output before any command"
            steps[-1][1].append(line.rstrip())
    assert steps
    for command, expected in steps:
        assert run(command, tmp_path) == expected, command


# --- every volume command line against its --help ------------------------------------------------

@dataclass(frozen=True)
class Option:
    names: tuple[str, ...]
    takes_value: bool
    choices: tuple[str, ...]


@dataclass(frozen=True)
class Help:
    options: dict[str, Option]
    arguments: int
    commands: frozenset[str]


OPTION_LINE = re.compile(r"^  (-\S.*?)(?:\s{2,}|$)")


@functools.cache
def help_of(command: str) -> Help:
    """``volume [command] --help``, parsed: options (names, value, choices), arguments, commands."""
    args = [sys.executable, "-m", "volume", *([command] if command else []), "--help"]
    proc = subprocess.run(args, capture_output=True, text=True, env=environment(), timeout=120)
    assert proc.returncode == 0, f"volume {command} --help: exit {proc.returncode}: {proc.stderr}"
    options: dict[str, Option] = {}
    arguments, commands, section = 0, set(), ""
    for line in proc.stdout.splitlines():
        if line and not line.startswith(" "):
            section = line.rstrip(":")
            continue
        if section == "Options":
            m = OPTION_LINE.match(line)
            if not m:
                continue
            words = [w.rstrip(",") for w in m.group(1).split() if w != "/"]
            names = tuple(w for w in words if w.startswith("-"))
            metavar = next((w for w in words if not w.startswith("-")), "")
            choices = tuple(metavar[1:-1].split("|")) if re.fullmatch(r"<[^<>]*\|[^<>]*>", metavar) else ()
            option = Option(names, bool(metavar), choices)
            options.update(dict.fromkeys(names, option))
        elif section == "Arguments" and re.match(r"^  \S", line):
            arguments += 1
        elif section == "Commands" and re.match(r"^  \S", line):
            commands.add(line.split()[0])
    return Help(options, arguments, frozenset(commands))


def check_command_line(command: str) -> list[str]:
    """What is wrong with a ``volume ...`` line by its command's ``--help`` ([] when nothing)."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split, lexer.commenters = True, "#"
    words = list(lexer)
    for k, word in enumerate(words):
        if word and set(word) <= set("();<>|&"):  # an operator: the rest is the shell's
            words = words[:k - 1] if k and words[k - 1].isdigit() and ">" in word else words[:k]  # 2>&1
            break
    assert words[0] == "volume"
    words = words[1:]
    if not words:
        return []
    name, rest = words[0], words[1:]
    if name.startswith("-"):
        return [] if name in help_of("").options else [f"volume has no option {name}"]
    if name not in help_of("").commands:
        return [f"no command {name!r} (volume --help lists {sorted(help_of('').commands)})"]
    spec, problems, positional, k = help_of(name), [], 0, 0
    while k < len(rest):
        word = rest[k]
        if word.startswith("-") and len(word) > 1 and not re.fullmatch(r"-[\d.,]+", word):
            key, _, inline = word.partition("=")
            option = spec.options.get(key)
            if option is None:
                problems.append(f"volume {name} has no option {key}")
                if not inline and k + 1 < len(rest) and not rest[k + 1].startswith("-"):
                    k += 1  # its value, most likely: not an argument
            elif option.takes_value:
                value = inline if inline else (rest[k + 1] if k + 1 < len(rest) else None)
                k += 0 if inline else 1
                if value is None:
                    problems.append(f"{key} needs a value")
                elif option.choices and value.lower() not in {c.lower() for c in option.choices}:
                    problems.append(f"{key} {value}: not one of {'|'.join(option.choices)}")
        else:
            positional += 1
        k += 1
    if positional > spec.arguments:
        problems.append(f"volume {name} takes {spec.arguments} argument(s), given {positional}")
    return problems


def test_the_help_parser_finds_what_volume_mip_takes() -> None:
    """The check below is only as good as its reading of --help: it must see options, values,
    choices and arguments, and refuse what does not exist."""
    mip = help_of("mip")
    assert mip.options["--plane"] is mip.options["-p"] and mip.options["-p"].choices == ("axial", "coronal", "sagittal")
    assert mip.options["--force"].takes_value is False and mip.options["--slab"].takes_value is True
    assert mip.options["--no-labels"] is mip.options["--labels"] and mip.arguments == 1
    assert {"convert", "mip", "serve", "index"} <= help_of("").commands
    assert check_command_line("volume mip CT/ --plane coronal --slab 20 -o x.png") == []
    assert check_command_line("volume mip CT/ --plane frontal") == ["--plane frontal: not one of axial|coronal|sagittal"]
    assert check_command_line("volume mip CT/ --thickness 5") == ["volume mip has no option --thickness"]
    assert check_command_line("volume mip A/ B/") == ["volume mip takes 1 argument(s), given 2"]
    assert check_command_line("volume project CT/")[0].startswith("no command 'project'")
    assert check_command_line("volume render CT/ --axis l --turntable 36 -o x.mp4 2>&1 | tail -1") == []
    assert check_command_line("volume index empty -o empty.csv; echo $?") == []


@pytest.mark.parametrize("where, command", [(f"README.md:{n}", c) for n, c in volume_lines(README)],
                         ids=[f"README.md:{n}" for n, _ in volume_lines(README)])
def test_readme_volume_commands_exist_with_their_options(where: str, command: str) -> None:
    assert check_command_line(command) == [], where


DOC_PAGES = sorted((ROOT / "docs").glob("*.md"))


@pytest.mark.parametrize("page", DOC_PAGES, ids=lambda p: p.name)
def test_docs_volume_commands_exist_with_their_options(page: Path) -> None:
    problems = [f"{page.name}:{n}: {c}: {p}" for n, c in volume_lines(page) for p in check_command_line(c)]
    assert problems == []


def test_readme_links_are_pages_of_the_repository() -> None:
    text = README.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    assert targets
    for target in targets:
        assert not re.match(r"[a-z]+:", target), f"README.md links outside the repository: {target}"
        path = (ROOT / target).resolve()
        assert path.is_relative_to(ROOT) and path.exists(), f"README.md: {target} is not a file of the repository"


def test_readme_names_the_system_packages_ci_installs_for_the_window_and_browser_tests() -> None:
    """The Debian packages beside the test command are those `.ci/run` installs, by one apt-get line."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    installed = {pkg for line in re.findall(r"apt-get install ([^>)]*)", ci)
                 for pkg in line.split() if not pkg.startswith("-")}
    text = README.read_text(encoding="utf-8")
    after = text.split("<!-- /test-command -->", 1)[1]
    line = re.search(r"^apt-get update && .*apt-get install (.*)$", after, flags=re.M)
    assert line, "README.md: no apt-get line after the test command"
    assert {pkg for pkg in line.group(1).split() if not pkg.startswith("-")} == installed == {
        "xvfb", "chromium", "chromium-driver", "nodejs", "npm"}
    npm = re.search(r"npm install (--prefix \S+) .*?(bids-validator@\S+)", ci)
    assert npm and f"npm install {npm.group(1)} {npm.group(2)}" in after, "README.md: not the npm line .ci/run runs"
    assert after.index(line.group(0)) < after.index("\n## "), "the line belongs next to the test command"
