"""The shared configuration machinery on a toy command: tables, arrays, sub-tables, overrides."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from modeltap.core.errors import ConfigError
from modeltap.core.settings import REQUIRED, fields_of, load, markdown_table, setting


@dataclass(frozen=True, kw_only=True)
class Extra:
    depth: int = setting(1, "How deep.", min=1)


@dataclass(frozen=True, kw_only=True)
class Item:
    name: str = setting(REQUIRED, "Its name.")
    weight: float = setting(1.0, "Its weight.", min=0, max=1, max_exclusive=True)
    extra: Extra | None = None

    def validate(self) -> None:
        if self.name == "bad":
            raise ConfigError("name 'bad' is refused")


@dataclass(frozen=True)
class Main:
    size: int = setting(3, "How many.", min=0)


@dataclass(frozen=True, kw_only=True)
class Toy:
    main: Main = Main()
    items: tuple[Item, ...] = ()


def toy(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Toy:
    f = tmp_path / "toy.toml"
    f.write_text(text)
    return load(Toy, env_prefix="TOY_", environ=env or {}, file=f)


def test_arrays_sub_tables_and_overrides(tmp_path: Path) -> None:
    cfg = toy(
        tmp_path,
        '[main]\nsize = 5\n[[items]]\nname = "a"\n[items.extra]\ndepth = 4\n[[items]]\nname = "b"\n',
        {"TOY_MAIN_SIZE": "7"},
    )
    assert cfg.main.size == 7
    assert [(i.name, i.extra) for i in cfg.items] == [("a", Extra(depth=4)), ("b", None)]


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ('[[items]]\nweight = 0.5\n', {}, "toy.toml: items[1] needs name"),
        ('[[items]]\nname = "a"\nweigth = 0.5\n', {}, "unknown key items[1].weigth (did you mean items[1].weight?)"),
        ('[[items]]\nname = "a"\nweight = 1\n', {}, "toy.toml: items[1].weight=1.0: must be < 1"),
        ('[[items]]\nname = "a"\n[items.extra]\ndepth = 0\n', {}, "items[1].extra.depth=0: must be >= 1"),
        ('[[items]]\nname = "bad"\n', {}, "toy.toml: items[1]: name 'bad' is refused"),
        ("items = 3\n", {}, "toy.toml: items must be [[items]] tables"),
        ("[mian]\n", {}, "unknown table [mian] (did you mean main?)"),
        ("", {"TOY_ITEMS_NAME": "x"}, "unknown environment variable TOY_ITEMS_NAME"),
    ],
)  # fmt: skip
def test_errors_are_one_line_naming_the_source(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        toy(tmp_path, text, env)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_table_marks_file_only_and_required_keys() -> None:
    table = markdown_table(Toy, "TOY_")
    assert "| `main.size` | `TOY_MAIN_SIZE` | int | `3` | How many. |" in table
    assert "| `items[].name` | (file only) | str | (required) | Its name. |" in table
    assert "| `items[].extra.depth` | (file only) | int | `1` | How deep. |" in table
    assert [i.key for i in fields_of(Toy)] == [
        "main.size", "items[].name", "items[].weight", "items[].extra.depth"
    ]  # fmt: skip
