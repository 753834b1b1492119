"""Commit, compare and blame URLs from templates in the settings, with presets for common forges.

Settings (``[incidents.links]`` in the settings file, or a plain dict)::

    preset = "github"                       # github | gitlab | gitea | cgit
    url = "https://github.com/acme/shop"    # the repository's web address
    # any of these override the preset:
    commit = "{url}/commit/{sha}"
    compare = "{url}/compare/{base}...{sha}"
    blame = "{url}/blame/{sha}/{path}#L{line}"

Placeholders: ``{url} {sha} {short} {base} {path} {line}``; ``path`` is percent-encoded.
With no url and no templates, no links are produced (the report still lists every sha).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from greenlight.errors import SettingsError

PRESETS: dict[str, dict[str, str]] = {
    "github": {"commit": "{url}/commit/{sha}",
               "compare": "{url}/compare/{base}...{sha}",
               "blame": "{url}/blame/{sha}/{path}#L{line}"},
    "gitlab": {"commit": "{url}/-/commit/{sha}",
               "compare": "{url}/-/compare/{base}...{sha}",
               "blame": "{url}/-/blame/{sha}/{path}#L{line}"},
    "gitea": {"commit": "{url}/commit/{sha}",
              "compare": "{url}/compare/{base}...{sha}",
              "blame": "{url}/blame/commit/{sha}/{path}#L{line}"},
    "cgit": {"commit": "{url}/commit/?id={sha}",
             "compare": "{url}/diff/?id={sha}&id2={base}",
             "blame": "{url}/blame/{path}?id={sha}#n{line}"},
}
_KINDS = ("commit", "compare", "blame")
_FIELDS = {"url", "sha", "short", "base", "path", "line"}


@dataclass(frozen=True)
class LinkTemplates:
    commit: str | None = None
    compare: str | None = None
    blame: str | None = None
    url: str = ""

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None) -> LinkTemplates:
        """Build from the ``links`` settings table; unknown presets/placeholders are errors."""
        settings = dict(settings or {})
        preset_name = settings.get("preset")
        templates: dict[str, str] = {}
        if preset_name:
            if preset_name not in PRESETS:
                raise SettingsError(f"incidents.links.preset = {preset_name!r} is unknown; "
                                    f"use one of {', '.join(sorted(PRESETS))}")
            templates.update(PRESETS[preset_name])
        for kind in _KINDS:
            if settings.get(kind):
                templates[kind] = str(settings[kind])
        url = str(settings.get("url", "")).rstrip("/")
        if not url and any("{url}" in t for t in templates.values()):
            if not any(settings.get(k) for k in _KINDS):
                return cls()                       # a preset without url: no links
        for kind, template in templates.items():
            try:
                template.format(**{f: "x" for f in _FIELDS})
            except (KeyError, IndexError, ValueError) as exc:
                raise SettingsError(f"incidents.links.{kind} = {template!r}: bad placeholder "
                                    f"{exc}; allowed: {', '.join(sorted(_FIELDS))}") from exc
        return cls(url=url, **templates)

    def _fill(self, template: str | None, **values: Any) -> str | None:
        if not template:
            return None
        sha = values.get("sha") or ""
        values.setdefault("short", sha[:12])
        values.setdefault("base", "")
        values.setdefault("path", "")
        values.setdefault("line", "")
        return template.format(url=self.url, **values)

    def commit_url(self, sha: str) -> str | None:
        return self._fill(self.commit, sha=sha)

    def compare_url(self, base: str | None, sha: str) -> str | None:
        if not base:
            return self.commit_url(sha)
        return self._fill(self.compare, sha=sha, base=base)

    def blame_url(self, sha: str, path: str, line: int) -> str | None:
        return self._fill(self.blame, sha=sha, path=quote(path), line=line)
