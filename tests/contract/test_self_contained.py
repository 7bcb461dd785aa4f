"""The repository stands on its own: no file points to documents outside it.

The domain brief and the topic contract live in ``docs/domain.md`` and ``docs/contract.md``
(the contract in code in ``schemas/``); README.md links both. No text file may cite the
notes this project was once written from, which are not part of the repository.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Built from pieces, so that this file does not match itself.
FORBIDDEN = (
    "CONTRACT" + ".md",
    "DOMAIN" + ".md",
    ".." + "/shared",
    "/work" + "/shared",
    "PLATFORM" + "_NOTES",
    "HOUSE" + "_STYLE",
)

TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".sql", ".json", ".sh", ".cfg", ".ini", ".txt"}
TEXT_NAMES = {"Makefile", "Dockerfile", ".env.example", ".gitignore"}
SKIP_DIRS = {".git", ".venv", "var", "__pycache__", ".pytest_cache", ".hypothesis", "build", "node_modules"}


def _is_text_file(rel: Path) -> bool:
    if rel.suffix in TEXT_SUFFIXES or rel.name in TEXT_NAMES or rel.name.startswith("Dockerfile"):
        return True
    if rel.suffix == "":  # an extensionless script such as .ci/run
        try:
            with open(ROOT / rel, "rb") as f:
                return f.read(2) == b"#!"
        except OSError:
            return False
    return False


def _skipped(rel: Path) -> bool:
    return any(part in SKIP_DIRS or part.endswith(".egg-info") for part in rel.parts[:-1])


def repository_files() -> list[Path]:
    """Tracked files plus new ones not ignored (git), or a walk of the tree without git."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT, capture_output=True, check=True, timeout=60,
        ).stdout
        names = sorted({Path(n) for n in out.decode("utf-8", "surrogateescape").split("\0") if n})
    except (OSError, subprocess.SubprocessError):
        names = []
        for dirpath, dirnames, filenames in os.walk(ROOT):
            dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info")]
            names += [Path(dirpath, f).relative_to(ROOT) for f in filenames]
    return [n for n in names if not _skipped(n) and _is_text_file(n) and (ROOT / n).is_file()]


def test_the_scan_sees_the_repository():
    files = {p.as_posix() for p in repository_files()}
    for expected in ("README.md", "Makefile", "pyproject.toml", "schemas/asyncapi.yaml", "docs/domain.md",
                     "tests/contract/test_self_contained.py"):
        assert expected in files, f"{expected} is not scanned"


def test_no_file_points_outside_the_repository():
    offenders = []
    for rel in repository_files():
        text = (ROOT / rel).read_text(encoding="utf-8", errors="replace")
        for lineno, line in enumerate(text.splitlines(), 1):
            for needle in FORBIDDEN:
                if needle in line:
                    offenders.append(f"{rel}:{lineno}: {needle}")
    assert not offenders, (
        "cite docs/domain.md, docs/contract.md or the schemas/ module instead:\n  " + "\n  ".join(offenders)
    )


def test_the_domain_and_contract_guides_exist_and_readme_links_them():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for doc in ("docs/domain.md", "docs/contract.md"):
        path = ROOT / doc
        assert path.is_file(), f"{doc} is missing"
        assert path.read_text(encoding="utf-8").strip(), f"{doc} is empty"
        assert re.search(rf"\]\(\.?/?{re.escape(doc)}(#[^)]*)?\)", readme), f"README.md does not link {doc}"


def test_the_guides_link_only_to_files_that_exist():
    docs = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))
    assert "docs/measurements.md" in docs
    for doc in ["README.md", *docs]:
        text = (ROOT / doc).read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" in target:
                continue
            assert (ROOT / doc).parent.joinpath(target).resolve().exists(), f"{doc} links to missing {target}"
