"""The README stays true: its make targets, flags and sample event match the code."""

from __future__ import annotations

import json
import re

from jsonschema import Draft202012Validator, FormatChecker

from consumer.monthly_logins import build_parser
from producer.config import OPTION_GROUPS
from services.settings import PROJECT_ROOT
from tests.helpers import make_help

README = (PROJECT_ROOT / "README.md").read_text()


def test_the_make_targets_block_is_the_output_of_make_help():
    block = README.split("## All `make` targets\n\n```text\n", 1)[1].split("```", 1)[0]
    help_text = make_help()
    assert block.strip("\n") == help_text.strip("\n")


def test_every_producer_and_job_flag_is_documented():
    producer_flags = {o.flag for options in OPTION_GROUPS.values() for o in options}
    job_flags = {
        a.option_strings[0]
        for a in build_parser({})._actions
        if a.option_strings and a.option_strings[0] != "-h"
    }
    missing = sorted(f for f in producer_flags | job_flags if f"`{f}`" not in README)
    assert missing == []


def test_the_sample_event_is_valid():
    schema = json.loads((PROJECT_ROOT / "producer/login_event.schema.json").read_text())
    sample = re.search(r"```json\n(\{.+\})\n```", README).group(1)
    assert (
        list(
            Draft202012Validator(schema, format_checker=FormatChecker()).iter_errors(
                json.loads(sample)
            )
        )
        == []
    )
