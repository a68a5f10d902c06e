"""The README and docs/ stay true: the README is a short front door whose links resolve, and
docs/USAGE.md's make targets, flags and defaults match the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from consumer.options import build_parser
from producer.config import FLAG_GROUPS
from services.settings import PROJECT_ROOT
from tests.support.compose import make_help

README_PATH = PROJECT_ROOT / "README.md"
README = README_PATH.read_text()
USAGE = (PROJECT_ROOT / "docs" / "USAGE.md").read_text()
PAGES = [README_PATH, *sorted((PROJECT_ROOT / "docs").glob("*.md"))]


# --- The front door ---------------------------------------------------------------------------


def test_the_readme_is_a_front_door():
    assert len(README.splitlines()) <= 250


def markdown_links(text: str) -> list[str]:
    """The targets of ``[text](target)`` and ``![alt](target)`` outside code."""
    prose = re.sub(r"^ *```.*?^ *```", "", text, flags=re.DOTALL | re.MULTILINE)
    prose = re.sub(r"`[^`\n]*`", "", prose)
    return re.findall(r"\]\(([^)\s]+)\)", prose)


def anchors(text: str) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces to -."""
    found: set[str] = set()
    prose = re.sub(r"^ *```.*?^ *```", "", text, flags=re.DOTALL | re.MULTILINE)
    for heading in re.findall(r"^#{1,6} (.+)$", prose, flags=re.MULTILINE):
        heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        unique, n = slug, 0
        while unique in found:
            n += 1
            unique = f"{slug}-{n}"
        found.add(unique)
    return found


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in markdown_links(page.read_text()):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved.read_text()):
            broken.append(f"{target}: no heading with that anchor")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(PROJECT_ROOT).as_posix())
def test_every_relative_link_resolves(page: Path):
    assert broken_links(page) == []


def test_the_link_check_sees_a_missing_file_and_a_missing_anchor(tmp_path: Path):
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other\n\n## The cluster topology (`make up X=y`)\n")
    page.write_text(
        "# Page: `code` → here\n\n## Page\n\n## Page\n\n"
        "[ok](other.md#the-cluster-topology-make-up-xy) [ok](#page-code--here) [ok](#page-1)\n"
        "[web](https://example.com/x) `[not a link](nowhere.md)`\n"
        "```text\n[not a link](nowhere.md)\n```\n"
        "[gone](missing.md) [bad](other.md#nope) ![img](images/none.png) [bad](#page-2)\n"
    )
    assert broken_links(page) == [
        "missing.md: no such file",
        "other.md#nope: no heading with that anchor",
        "images/none.png: no such file",
        "#page-2: no heading with that anchor",
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(PROJECT_ROOT).as_posix())
def test_no_machine_path_in_the_docs(page: Path):
    text = page.read_text()
    found = re.findall(r"(?<![\w.])/(?:work|home|Users|root)/[\w./-]*", text)
    assert str(PROJECT_ROOT) not in text
    assert found == []


@pytest.mark.parametrize("page", [README, USAGE], ids=["README.md", "docs/USAGE.md"])
def test_the_sample_event_is_valid(page: str):
    schema = json.loads((PROJECT_ROOT / "producer/login_event.schema.json").read_text())
    sample = re.search(r"```json\n(\{.+\})\n```", page).group(1)
    assert (
        list(
            Draft202012Validator(schema, format_checker=FormatChecker()).iter_errors(
                json.loads(sample)
            )
        )
        == []
    )


# --- docs/USAGE.md: the reference -------------------------------------------------------------


def test_the_make_targets_block_is_the_output_of_make_help():
    block = USAGE.split("## All `make` targets\n\n```text\n", 1)[1].split("```", 1)[0]
    help_text = make_help()
    assert block.strip("\n") == help_text.strip("\n")


def test_every_producer_and_job_flag_is_documented():
    producer_flags = {o.flag for options in FLAG_GROUPS.values() for o in options}
    job_flags = {
        a.option_strings[0]
        for a in build_parser({})._actions
        if a.option_strings and a.option_strings[0] != "-h"
    }
    missing = sorted(f for f in producer_flags | job_flags if f"`{f}`" not in USAGE)
    assert missing == []


def documented_options(heading: str) -> list[tuple[str, str | None, str | None]]:
    """``(flag, env, default text)`` from the flag table under ``heading`` in docs/USAGE.md.

    A row may list several flags with their variables and defaults in the same order;
    ``...`` ends a list early, and a default that is prose (``none``, ``no cap``, ...) is
    None: only literal defaults are compared with the code.
    """
    section = USAGE.split(heading, 1)[1].split("\n## ", 1)[0]
    found = []
    for line in section.splitlines():
        if not line.startswith("| `--"):
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        flags = re.findall(r"`(--[a-z-]+)`", cells[0])
        envs = re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[1])
        defaults = [d.strip() for d in re.split(r"[;(]| or ", cells[2])[0].split(",")]
        for i, flag in enumerate(flags):
            env = envs[i] if i < len(envs) else None
            text = defaults[i] if len(defaults) == len(flags) else None
            literal = text and re.fullmatch(r"`?([\w.:/-]+?)`?(/s)?", text)
            value = literal.group(1) if literal else None
            prose = value in ("none", "now", "unlimited") or re.search(r"[A-Z]{3}_", value or "")
            found.append((flag, env, None if prose else value))
    return found


def test_the_producer_table_matches_the_parser_names_and_defaults():
    options = {o.flag: o for group in FLAG_GROUPS.values() for o in group}
    rows = documented_options("## The producer")
    assert {flag for flag, _, _ in rows} == set(options)
    checked = 0
    for flag, env, default in rows:
        if env is not None:
            assert env == options[flag].env, flag
        if default is not None:
            assert options[flag].parse(default) == options[flag].default, flag
            checked += 1
    assert checked >= 15  # most defaults are literal; a parsing slip must not skip them all


def test_the_job_table_matches_the_parser_names_and_defaults():
    parser = build_parser({})
    args = vars(parser.parse_args([]))
    actions = {a.option_strings[0]: a for a in parser._actions if a.option_strings}
    rows = documented_options("## The Spark job")
    documented = {flag for flag, _, _ in rows}
    assert documented == set(actions) - {"-h"} - SECURITY_FLAGS
    checked = 0
    for flag, env, default in rows:
        action = actions[flag]
        assert f"[{env}]" in action.help, flag
        if default is not None:
            convert = action.type or str
            assert convert(default) == args[action.dest], flag
            checked += 1
    assert checked >= 10


# The job's table sums up its security flags in one row ("as for the producer").
SECURITY_FLAGS = {
    "--security-protocol",
    "--sasl-mechanism",
    "--sasl-username",
    "--sasl-password-file",
    "--ssl-cafile",
}


def test_the_usage_page_names_every_rejection_reason_of_the_contract():
    from contract.events import REJECTION_REASONS

    job_section = USAGE.split("## The Spark job", 1)[1].split("\n## ", 1)[0]
    assert [r for r in REJECTION_REASONS if f"`{r}`" not in job_section] == []
