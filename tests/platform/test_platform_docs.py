"""Docs match the code: every FACEACCESS_* setting is in docs/running.md's table."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_every_setting_is_documented():
    knobs = set(re.findall(r"FACEACCESS_[A-Z0-9_]+", (REPO / "faceaccess" / "settings.py").read_text()))
    documented = set(re.findall(r"FACEACCESS_[A-Z0-9_]+", (REPO / "docs" / "running.md").read_text()))
    assert sorted(knobs - documented) == []


def _where_things_are() -> str:
    readme = (REPO / "README.md").read_text()
    start = readme.index("## Where things are")
    return readme[start:readme.index("\n## ", start + 1)]


def test_every_file_and_folder_the_readme_names_exists():
    section = _where_things_are()
    named = set(re.findall(r"`(\w[\w./]*(?:\.py|/))`", section))  # not URLs such as `/api/`
    tracked = {p.relative_to(REPO).as_posix() for p in REPO.rglob("*") if ".venv" not in p.parts}
    missing = sorted(n for n in named if not any(t == n.rstrip("/") or t.endswith("/" + n.rstrip("/"))
                                                  for t in tracked))
    assert len(named) > 40 and missing == []


def test_the_readme_names_every_part_of_access_and_the_console():
    section = _where_things_are()
    parts = [p for app in ("access", "console") for p in sorted((REPO / app).iterdir())
             if p.name not in ("__init__.py", "__pycache__", "migrations", "apps.py", "admin.py")]
    unnamed = [p.relative_to(REPO).as_posix() for p in parts
               if f"`{p.name}`" not in section and f"`{p.name}/`" not in section]
    assert unnamed == []
