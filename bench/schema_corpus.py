"""Build the real-world migration corpus for bench/schema_review.py from fetched git mirrors.

Others' files are not ours: the corpus lives outside the repository (default /work/corpus) and
is never committed.  Each repository's migrations are copied as of its mirror's HEAD, one
folder per dialect and repository, with MANIFEST.json naming the repository, commit and paths.

    .venv/bin/python bench/schema_corpus.py /work/corpus --mirror /work/.mirror
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import git

# (repository, path prefix, file-name pattern, dialect): up migrations only (what deploys run).
SOURCES = [
    ("ory/kratos", "persistence/sql/migrations/sql/", r"\.postgres\.up\.sql$", "postgres"),
    ("ory/kratos", "persistence/sql/migrations/sql/", r"\.mysql\.up\.sql$", "mysql"),
    ("ory/hydra", "persistence/sql/migrations/", r"\.postgres\.up\.sql$", "postgres"),
    ("ory/hydra", "persistence/sql/migrations/", r"\.mysql\.up\.sql$", "mysql"),
    ("ory/keto", "internal/persistence/sql/migrations/sql/", r"\.postgres\.up\.sql$",
     "postgres"),
    ("ory/keto", "internal/persistence/sql/migrations/sql/", r"\.mysql\.up\.sql$", "mysql"),
    ("goharbor/harbor", "make/migrations/postgresql/", r"\.up\.sql$", "postgres"),
    ("supabase/auth", "migrations/", r"\.up\.sql$", "postgres"),
]


# Migrations that are Go templates, rendered the way their project renders them by default.
TEMPLATES = {"supabase/auth": [(re.compile(rb'\{\{\s*index\s+\.Options\s+"Namespace"\s*\}\}'),
                                b"auth")]}


def extract(corpus: Path, mirror: Path) -> dict:
    manifest: dict = {"repositories": []}
    for repo_name, prefix, pattern, dialect in SOURCES:
        git_dir = mirror / repo_name.replace("/", "+") / "repo"
        if not git_dir.exists():
            print(f"skip {repo_name}: no mirror at {git_dir}", file=sys.stderr)
            continue
        repo = git.Repo(git_dir)
        repo.git.update_environment(GIT_DIR=repo.git_dir)  # a bare mirror not named *.git
        commit = repo.head.commit
        out = corpus / dialect / repo_name.replace("/", "+")
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for blob in commit.tree.traverse():
            if blob.type != "blob" or not blob.path.startswith(prefix):
                continue
            if not re.search(pattern, blob.path):
                continue
            target = out / blob.path[len(prefix):].replace("/", "__")
            data = blob.data_stream.read()
            for pattern_re, value in TEMPLATES.get(repo_name, []):
                data = pattern_re.sub(value, data)
            target.write_bytes(data)
            paths.append(blob.path)
        manifest["repositories"].append({"repo": repo_name, "commit": commit.hexsha,
                                         "dialect": dialect, "prefix": prefix,
                                         "files": len(paths)})
        print(f"{repo_name} {commit.hexsha[:12]} {dialect}: {len(paths)} files")
    return manifest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--mirror", type=Path, default=Path("/work/.mirror"))
    args = parser.parse_args()
    manifest = extract(args.corpus, args.mirror)
    old = args.corpus / "MANIFEST.json"
    if old.exists():  # keep entries added by hand (files read one by one from the index)
        kept = [r for r in json.loads(old.read_text()).get("repositories", [])
                if r.get("added_by_hand")]
        manifest["repositories"].extend(kept)
    old.write_text(json.dumps(manifest, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
