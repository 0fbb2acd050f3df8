"""Campaigns as code: YAML or TOML files (one, or a folder of them) read into
definitions, and the table written back out in either format.

    # campaigns.yaml                      # campaigns.toml
    campaigns:                            [[campaigns]]
      - name: winback-de                  name = "winback-de"
        schedule: "0 10 * * 1-5"          schedule = "0 10 * * 1-5"
        ...                               ...
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tomli_w
import yaml

from campaigner import errors
from campaigner.definitions import (
    Definition,
    InvalidDefinition,
    from_mapping,
    to_mapping,
)
from campaigner.errors import clip, shown

SUFFIXES = {".yaml": "yaml", ".yml": "yaml", ".toml": "toml"}
FORMATS = ("yaml", "toml")


def read_definitions(path: Path) -> list[Definition]:
    """Every campaign of a file, or of each YAML/TOML file of a folder (in name
    order); InvalidDefinition lists every problem of every entry."""
    files = campaign_files(path)
    definitions: list[Definition] = []
    problems: list[str] = []
    for file in files:
        for index, entry in enumerate(entries_of(file), start=1):
            where = f"{file}: campaign #{index}"
            if not isinstance(entry, dict):
                problems.append(f"{where}: must be a table of keys, not {shown(entry)}")
                continue
            try:
                definitions.append(from_mapping(entry, where=str(file)))
            except InvalidDefinition as exc:
                problems.extend(exc.problems)
    if problems:
        raise InvalidDefinition(problems)
    return definitions


def campaign_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES)
        if not files:
            raise errors.UsageError(f"{path} holds no .yaml, .yml or .toml file")
        return files
    if not path.exists():
        raise errors.UsageError(f"{path} does not exist")
    if path.suffix.lower() not in SUFFIXES:
        raise errors.UsageError(f"{path}: campaign files end in .yaml, .yml or .toml")
    return [path]


def entries_of(file: Path) -> list[Any]:
    """The `campaigns` list of one file (an empty file holds no campaign)."""
    try:
        text = file.read_text(encoding="utf-8")
        document = parse(text, SUFFIXES[file.suffix.lower()])
    except OSError as exc:
        raise errors.UsageError(f"cannot read {file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise errors.UsageError(f"{file} is not UTF-8 text") from None
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        hint = (
            " (in YAML, quote a schedule that starts with '*':"
            " schedule: '*/30 * * * *')"
            if "alias" in str(exc) and not isinstance(exc, AliasRefused)
            else ""
        )
        raise errors.UsageError(f"{file} is not valid: {exc}{hint}") from None
    if document is None:
        return []
    if not isinstance(document, dict) or set(document) - {"campaigns"}:
        raise errors.UsageError(
            f"{file}: the file must hold one key, `campaigns`, a list of campaigns"
        )
    campaigns = document.get("campaigns") or []
    if not isinstance(campaigns, list):
        raise errors.UsageError(f"{file}: `campaigns` must be a list")
    return campaigns


def parse(text: str, kind: str) -> Any:
    if kind == "toml":
        return tomllib.loads(text)
    # Plain values only, never objects named in the file, and no aliases.
    return yaml.load(text, Loader=NoAliasLoader)


class AliasRefused(yaml.MarkedYAMLError):
    """The file uses a YAML anchor or alias."""


class NoAliasLoader(yaml.SafeLoader):
    """safe_load without anchors and aliases: a campaign file has no use for
    them, and a few nested aliases expand into gigabytes (a "billion laughs")."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise AliasRefused(
                problem="anchors (&name) and aliases (*name) are not allowed"
                " in campaign files; write each value out",
                problem_mark=event.start_mark,
            )
        return super().compose_node(parent, index)


def dump(definitions: Sequence[Definition], kind: str) -> str:
    """The definitions as one file's text, in `kind` (yaml or toml)."""
    document = {"campaigns": [to_mapping(d) for d in definitions]}
    if kind == "toml":
        try:
            return tomli_w.dumps(document, multiline_strings=True)
        except TypeError as exc:
            raise errors.UsageError(
                f"a campaign cannot be written as TOML ({exc}); use --format yaml"
            ) from None
    return yaml.dump(
        document,
        Dumper=ReadableDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=YAML_WIDTH,
    )


# Long cohorts stay on one line rather than being folded at 80 columns.
YAML_WIDTH = 10_000


class ReadableDumper(yaml.SafeDumper):
    """Plain values only, as safe_dump writes them; text of several lines (a
    cohort with comments, say) as a `|` block, kept as written."""


def represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


ReadableDumper.add_representer(str, represent_text)


def format_of(path: Path | None, requested: str | None) -> str:
    """--format if given, else the output file's suffix, else YAML. An output
    file must end in a suffix `apply` reads, matching --format if both are given."""
    if path is None:
        return requested or "yaml"
    suffix_format = SUFFIXES.get(path.suffix.lower())
    if suffix_format is None:
        raise errors.UsageError(
            f"-o {clip(str(path))}: write campaigns to a .yaml, .yml or .toml file"
        )
    if requested and requested != suffix_format:
        raise errors.UsageError(
            f"-o {clip(str(path))} is a {suffix_format} file but --format is"
            f" {requested}: drop --format or change the suffix"
        )
    return suffix_format


def check_output(path: Path) -> None:
    """Refuse an output file in a missing folder before reading the table."""
    if not path.parent.is_dir():
        raise errors.UsageError(
            f"-o {clip(str(path))}: folder {clip(str(path.parent))} does not exist"
        )


def write_atomically(path: Path, text: str) -> None:
    """Write next to the target, then rename: a reader never sees half a file."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise errors.UsageError(
            f"cannot write -o {clip(str(path))}: {exc.strerror}"
        ) from None
