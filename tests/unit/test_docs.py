"""The repository stands alone: no file cites material that lives outside it, every
relative link in the README and docs/ leads to a file (and heading) that exists, and every
docs/ page (and section) a file names exists. And the docs keep up with the code: every
fault action and bug variant has its row in their tables."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Places outside the repository that earlier code and docs cited: a shared folder of
# design notes and source texts on the build machine, and its files by name.
FORBIDDEN = re.compile(r"\.\./shared|DESIGN\.md|STYLE\.md|seeds/|/work/|\bseed 0\d\d\b")
# This file has to spell out what it forbids.
THIS_FILE = Path(__file__).resolve().relative_to(ROOT)

# [text](target) and reference definitions "[label]: target".
INLINE_LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto:
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
DOCS_PAGE = re.compile(r"\bdocs/[\w-]+\.md\b")
# A section named after its page, as code comments cite them: docs/page.md, "Heading".
DOCS_SECTION = re.compile(r"\b(docs/[\w-]+\.md), \"([^\"]+)\"")


def repository_files() -> list[Path]:
    """Tracked files and new ones not ignored by git, relative to the root: what a commit
    of the working tree would contain."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout to know which files belong to the repository")
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True).stdout.decode()
    return sorted({Path(name) for name in listing.split("\0") if name
                   and (ROOT / name).is_file()})


def text_of(path: Path) -> str | None:
    """The file's text, or None for a binary file."""
    data = (ROOT / path).read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def outside_citations() -> list[str]:
    found = []
    for path in repository_files():
        if path == THIS_FILE:
            continue
        text = text_of(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            match = FORBIDDEN.search(line)
            if match:
                found.append(f"{path}:{number}: {match.group(0)!r} in {line.strip()[:100]}")
    return found


def link_targets(markdown: str) -> list[str]:
    """Targets of the links in a Markdown text, outside code blocks and code spans."""
    prose = CODE_SPAN.sub("", FENCE.sub("", markdown))
    return INLINE_LINK.findall(prose) + REFERENCE_LINK.findall(prose)


def slug(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces turned into
    hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """The ids of the headings of a Markdown text, "-1", "-2", ... appended to repeats."""
    seen: dict[str, int] = {}
    ids = set()
    for heading in HEADING.findall(FENCE.sub("", markdown)):
        slug_ = slug(heading)
        count = seen.get(slug_, 0)
        seen[slug_] = count + 1
        ids.add(slug_ if count == 0 else f"{slug_}-{count}")
    return ids


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in link_targets(page.read_text(encoding="utf-8")):
        if EXTERNAL.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (page.parent / file_part) if file_part else page
        if not linked.exists():
            broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
        elif anchor and linked.suffix == ".md" and \
                anchor not in anchors(linked.read_text(encoding="utf-8")):
            broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    return broken


def documentation_pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_no_file_cites_anything_outside_the_repository() -> None:
    assert repository_files(), "no files found: the listing itself is broken"
    found = outside_citations()
    assert not found, ("these lines cite material outside the repository; explain it "
                       "in docs/ and cite that instead:\n" + "\n".join(found))


def test_every_relative_link_in_the_docs_resolves() -> None:
    pages = documentation_pages()
    assert len(pages) > 1, "docs/ has no pages"
    broken = [link for page in pages for link in broken_links(page)]
    assert not broken, "links that lead nowhere:\n" + "\n".join(broken)


def test_every_docs_page_and_section_a_file_names_exists() -> None:
    missing: list[str] = []
    for path in repository_files():
        text = text_of(path) if path != THIS_FILE else None
        if text is None:
            continue
        missing.extend(f"{path}: {name}" for name in sorted(set(DOCS_PAGE.findall(text)))
                       if not (ROOT / name).is_file())
        for page, heading in sorted(set(DOCS_SECTION.findall(" ".join(text.split())))):
            if (ROOT / page).is_file() and slug(heading) not in anchors(
                    (ROOT / page).read_text(encoding="utf-8")):
                missing.append(f"{path}: {page}, section {heading!r}")
    assert not missing, ("these files name docs pages or sections that do not exist:\n"
                         + "\n".join(missing))


def test_every_fault_action_and_variant_is_documented() -> None:
    from harness.faults.catalogue import ACTIONS
    from harness.variants import VARIANTS

    actions = (ROOT / "docs" / "adding-a-scenario.md").read_text(encoding="utf-8")
    variants = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    undocumented = [f"fault action {name} (docs/adding-a-scenario.md)" for name in ACTIONS
                    if f"| `{name}` |" not in actions]
    undocumented += [f"variant {name} (docs/architecture.md)" for name in VARIANTS
                     if f"| `{name}` |" not in variants]
    assert not undocumented, "missing from the docs' tables: " + ", ".join(undocumented)


def test_link_checker_sees_links_and_skips_code() -> None:
    markdown = ("See [a](docs/a.md), [b](b.md#part \"title\"), [c](https://example.com).\n"
                "[ref]: ../c.md\n"
                "`[not](code.md)`\n"
                "```\n[nor](block.md)\n```\n")
    assert link_targets(markdown) == ["docs/a.md", "b.md#part", "https://example.com",
                                      "../c.md"]


def test_heading_anchors_follow_github() -> None:
    markdown = ("# Who says so\n## The publisher's HTTP API\n### `Scenario`\n"
                "## Planned: containers\n## Faults\n## Faults\n```\n# not a heading\n```\n")
    assert anchors(markdown) == {"who-says-so", "the-publishers-http-api", "scenario",
                                 "planned-containers", "faults", "faults-1"}


# Assembled from parts, so that this file itself cites nothing outside the repository.
@pytest.mark.parametrize("line", ["see ../" + "shared/notes", "as in DESIGN" + ".md",
                                  "STYLE" + ".md", "the seeds" + "/ folder",
                                  "/wo" + "rk/main/x", "(seed " + "000, p. 2)"])
def test_forbidden_citations_are_recognised(line: str) -> None:
    assert FORBIDDEN.search(line)


@pytest.mark.parametrize("line", ["--seed 20261122", "seed 7", "design notes",
                                  "docs/architecture.md", "a seeded Random"])
def test_ordinary_text_is_not_flagged(line: str) -> None:
    assert not FORBIDDEN.search(line)
