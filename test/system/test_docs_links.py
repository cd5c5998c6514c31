"""The documentation points only at things that exist: every relative link of README.md and
doc/*.md (with its #anchor, if any), and every repository path the text names (`scripts/x.sh`,
`ovseg_ros/core/y.py`, `test/...`), in the repository; and nothing cites a file that lives
outside it (the design notes the project started from are not part of the package)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "doc").rglob("*.md"))]
# Folders and files of the repository that prose names; output folders (demo_out/, eval_out/,
# install/, ...) are made by commands and are not checked.
TRACKED = ("ovseg_ros/", "scripts/", "test/", "doc/", "config/", "launch/", "rviz/", "msg/",
           "srv/", "samples/", ".ci/")
ROOT_FILES = ("README.md", "package.xml", "setup.py", "CMakeLists.txt", "pyproject.toml",
              "requirements.txt", "requirements-pip-only.txt")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
PATH = re.compile(r"(?<![\w/.~-])((?:" + "|".join(re.escape(t) for t in TRACKED) +
                  r")[\w./-]*\w|" + "|".join(re.escape(f) for f in ROOT_FILES) + r")")
OUTSIDE = re.compile(r"DESIGN\.md|\.\./shared/")


def slug(heading: str) -> str:
    """GitHub's (and MyST's) anchor of a Markdown heading."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+)$", text, flags=re.M)}


def exists(named: str) -> bool:
    """A named path exists: as written, or as the stem of files (`doc/benchmarks/x.*`). A
    CamelCase last part is a ROS type (`ovseg_ros/srv/SetPrompts`), not a file."""
    last = named.rsplit("/", 1)[-1]
    if last[:1].isupper() and "." not in last:
        return True
    return (ROOT / named).exists() or any(ROOT.glob(named + ".*"))


def test_the_anchor_rule_matches_githubs():
    assert slug("Real weights") == "real-weights"
    assert slug("3D and Nav2: the `points` topic") == "3d-and-nav2-the-points-topic"
    assert slug("ROS 2 distros") == "ros-2-distros"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_exist(page):
    missing = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            missing.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            missing.append(f"{target} (no such heading)")
    assert not missing, f"{page.name}: broken links {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_named_repository_paths_exist(page):
    missing = sorted({p for p in PATH.findall(page.read_text()) if not exists(p)})
    assert not missing, f"{page.name} names paths that do not exist: {missing}"


def test_nothing_cites_a_file_outside_the_repository():
    cited = []
    for path in [*PAGES, *sorted((ROOT / "ovseg_ros").rglob("*.py")),
                 *sorted((ROOT / "test").rglob("*.py")), *sorted((ROOT / "scripts").glob("*"))]:
        if path.is_file() and path != Path(__file__) and OUTSIDE.search(path.read_text()):
            cited.append(str(path.relative_to(ROOT)))
    assert not cited, f"these cite files outside the repository: {cited}"


def test_the_checks_catch_a_broken_link_and_path(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n[a](missing.md) and `scripts/no_such_script.sh` and [b](#title)\n")
    assert LINK.findall(page.read_text()) == ["missing.md", "#title"]
    assert not (tmp_path / "missing.md").exists()
    assert PATH.findall(page.read_text()) == ["scripts/no_such_script.sh"]
    assert "title" in anchors(page)


def documented_modules(text: str) -> set[str]:
    """The modules the layout block of doc/architecture.md names: `folder/` lines open a
    folder, indented `name.py` (or `sub/name.py`) lines name a module in it."""
    block = text.split("```\novseg_ros/\n", 1)[1].split("```", 1)[0]
    found, folder = set(), ""
    for line in block.splitlines():
        words = line.split()
        if not words:
            continue
        if line.startswith("  ") and not line.startswith("    ") and words[0].endswith("/"):
            folder = words[0]
        elif words[0].endswith(".py"):
            found.add(("" if line.startswith("  ") and not line.startswith("    ") else folder)
                      + words[0])
    return found


def test_architecture_names_every_module():
    """doc/architecture.md names every module of the package with a line of its own."""
    package = ROOT / "ovseg_ros"
    modules = {str(p.relative_to(package)) for p in package.rglob("*.py")}
    named = documented_modules((ROOT / "doc" / "architecture.md").read_text())
    assert not modules - named, f"modules doc/architecture.md does not name: " \
        f"{sorted(modules - named)}"
    assert not named - modules, f"named but not in the package: {sorted(named - modules)}"


def test_the_module_check_reads_the_layout_block():
    text = "x\n```\novseg_ros/\n  a.py  top\n  core/   model\n    b.py  one\n```\n"
    assert documented_modules(text) == {"a.py", "core/b.py"}
