"""POST change records to the master's authenticated change hook, with a short timeout."""
from __future__ import annotations

from dataclasses import dataclass

import requests


class DeliveryError(Exception):
    """The master did not accept the change (down, slow, or refused it).

    ``permanent`` means resending cannot help (the master rejected the change as malformed).
    """

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Master:
    url: str  # e.g. http://127.0.0.1:8010/
    username: str
    password: str
    timeout: float = 3.0

    @property
    def hook_url(self) -> str:
        return self.url.rstrip("/") + "/change_hook/greenlight"


def send_changes(master: Master, changes: list[dict]) -> None:
    try:
        response = requests.post(master.hook_url, json={"changes": changes},
                                 auth=(master.username, master.password),
                                 timeout=(min(1.0, master.timeout), master.timeout))
    except requests.RequestException as exc:
        raise DeliveryError(f"master unreachable at {master.hook_url}: {exc}") from None
    if response.status_code >= 300:
        raise DeliveryError(f"master refused the change: HTTP {response.status_code} "
                            f"{response.text[:200]}", permanent=response.status_code == 400)
