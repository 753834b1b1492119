"""Web authentication and authorization for Buildbot, from the settings.

Users log in against Greenlight's password file (salted hashes, see greenlight.accounts);
roles come from the settings' ``[auth] roles`` table. Anonymous users can read; acting
(rebuild, force, stop) needs ``engineers``, except on the deploy and rollback builders, where it
needs ``deployers``; the Greenlight pages check their own roles.
"""
from __future__ import annotations

from pathlib import Path

from buildbot.plugins import util
from buildbot.www.auth import CustomAuth
from greenlight.accounts import check_credentials


class PasswordFileAuth(CustomAuth):
    """Buildbot login checked against a Greenlight password file (re-read on each login)."""

    def __init__(self, path: Path, **kwargs):
        super().__init__(**kwargs)
        self.path = Path(path)

    def check_credentials(self, username, password):
        user = username.decode() if isinstance(username, bytes) else username
        pw = password.decode() if isinstance(password, bytes) else password
        return check_credentials(self.path, user, pw)


def roles_by_user(roles: dict[str, list[str]]) -> dict[str, list[str]]:
    return {user: list(r) for user, r in roles.items()}


# Builders whose builds change production: forcing, rebuilding or stopping one needs this role.
DEPLOYERS = "deployers"
DEPLOY_BUILDERS = ("deploy", "rollback")


def make_authz(roles: dict[str, list[str]]) -> util.Authz:
    """Buildbot's first matching rule decides (and denies a user without its role), so the
    deployers' rules come before the engineers' rules that match every builder."""
    by_role: dict[str, list[str]] = {}
    for user, user_roles in roles.items():
        for role in user_roles:
            by_role.setdefault(role, []).append(user)
    matchers = [util.RolesFromUsername(roles=[role], usernames=users)
                for role, users in sorted(by_role.items())]
    return util.Authz(
        allowRules=[
            *[matcher(builder=name, role=DEPLOYERS)
              for name in DEPLOY_BUILDERS
              for matcher in (util.ForceBuildEndpointMatcher, util.RebuildBuildEndpointMatcher,
                              util.StopBuildEndpointMatcher)],
            util.RebuildBuildEndpointMatcher(role="engineers"),
            util.ForceBuildEndpointMatcher(role="engineers"),
            util.StopBuildEndpointMatcher(role="engineers"),
            util.AnyControlEndpointMatcher(role="admins"),
        ],
        roleMatchers=matchers,
    )
