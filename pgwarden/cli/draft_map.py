"""``pgwarden init``: draft a tenancy map from what a live server (and Azure) shows.

The draft encodes the most likely intent, weighed from evidence (``draft_tenancy``),
and leaves every doubt visible: each guess carries a ``# REVIEW:`` comment with its
evidence, what a role reaches beyond its app is listed as suspected cross-app access
(never made intent, so the scan still reports it), and the review list says what to
check first. A draft is a starting point for the owners, never a statement of what
they meant.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pgwarden.cli.draft_apps import AppGuess, first_few
from pgwarden.cli.draft_review import ReviewItem, ordered
from pgwarden.cli.draft_tenancy import TenancyGuess, app_databases, guess_tenancy
from pgwarden.collect.azure.secret_ref import KEYVAULT_PREFIX, parse_secret_ref
from pgwarden.collect.dsn import ENV_PREFIX, resolve_dsn
from pgwarden.collect.endpoint import endpoint_of, is_address, server_name_of
from pgwarden.collect.postgres.collector import PostgresCollector
from pgwarden.collect.postgres.scram import ScramKeyReuse
from pgwarden.model.config import AzureRef, Config, ServerConfig, load_config
from pgwarden.model.errors import CollectorError, ConnectError, UsageError
from pgwarden.model.evidence import MAX_LISTED
from pgwarden.model.identifiers import quote_ident, quote_literal
from pgwarden.model.snapshot import SYSTEM_DATABASES, AzureServer, Endpoint, PostgresSnapshot

if TYPE_CHECKING:
    # The Azure SDK is imported only when init reads Azure: plain PostgreSQL drafts
    # should not pay its start-up.
    from pgwarden.cli.draft_azure import AzureFacts
    from pgwarden.collect.azure.cloud import AzureSession

DEFAULT_DSN_HINT = "env:PGWARDEN_DSN"
# A draft grows with the apps, not with what one role reaches: the rest is in --json.
CROSS_ACCESS_SHOWN = 10


def _toml_string(value: str) -> str:
    # JSON string escapes are valid TOML basic-string escapes; JSON leaves DEL (U+007F)
    # raw, which a TOML string may not hold.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007F")


def _toml_list(values: Sequence[str]) -> str:
    return f"[{', '.join(_toml_string(v) for v in values)}]"


def _comment(text: str) -> str:
    """Text made safe for a TOML comment: a name with a line break must not end it."""
    return re.sub(r"[\x00-\x08\x0a-\x1f\x7f]", lambda m: f"\\x{ord(m.group()):02x}", text)


def auditor_sql(databases: list[str], role: str = "pgwarden_auditor") -> str:
    """The least-privilege auditor: pg_monitor plus CONNECT on every database (one
    GRANT each; beyond ``MAX_LISTED`` databases, one loop over them all, so the draft
    grows with the apps, not the databases)."""
    lines = [
        f"CREATE ROLE {quote_ident(role)} LOGIN PASSWORD '<choose one>' CONNECTION LIMIT 10;",
        f"GRANT pg_monitor TO {quote_ident(role)};",
    ]
    if len(databases) <= MAX_LISTED:
        lines += [
            f"GRANT CONNECT ON DATABASE {quote_ident(db)} TO {quote_ident(role)};"
            for db in databases
        ]
        return "\n".join(lines)
    system = ", ".join(quote_literal(name) for name in sorted(SYSTEM_DATABASES))
    lines += [
        f"-- CONNECT on each of the {len(databases)} databases that are not templates or "
        "the system's:",
        "DO $$DECLARE d name; BEGIN",
        "  FOR d IN SELECT datname FROM pg_database",
        f"           WHERE NOT datistemplate AND datname NOT IN ({system}) LOOP",
        f"    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', d, {quote_literal(role)});",
        "  END LOOP;",
        "END$$;",
    ]
    return "\n".join(lines)


@dataclass(frozen=True)
class InitRequest:
    """What ``pgwarden init`` was asked for.

    ``azure`` is the Flexible Server's ARM reference (``--azure-subscription``,
    ``--resource-group``, ``--server-name``); ``config_path`` an existing map to take
    ``[azure]``, ``[policy]`` sampling, and the server's ``dsn``, ``azure`` reference
    and app vaults from, when the options do not give them.
    """

    dsn: str | None = None
    name: str | None = None
    azure: AzureRef | None = None
    vaults: tuple[str, ...] = ()
    config_path: str | None = None

    @classmethod
    def of_options(
        cls,
        *,
        dsn: str | None,
        name: str | None,
        azure_subscription: str | None,
        resource_group: str | None,
        server_name: str | None,
        vaults: Sequence[str],
        config_path: str | None,
    ) -> InitRequest:
        """The request ``pgwarden init``'s options make; a contradiction is a UsageError."""
        if azure_subscription is None and (resource_group or server_name):
            raise UsageError("--resource-group and --server-name need --azure-subscription")
        ref = (
            AzureRef(
                subscription_id=azure_subscription,
                resource_group=resource_group,
                server_name=server_name,
            )
            if azure_subscription
            else None
        )
        return cls(dsn, name, ref, tuple(vaults), config_path)


@dataclass(frozen=True)
class Draft:
    """The drafted map's text, the guess behind it, and the review list."""

    text: str
    server_name: str
    guess: TenancyGuess
    review: tuple[ReviewItem, ...]

    def to_json(self, *, include_text: bool) -> dict[str, Any]:
        """The draft as data for tooling (``--json``), the TOML included when asked."""
        document: dict[str, Any] = {
            "server": self.server_name,
            **self.guess.to_json(),
            "review": [item.to_json() for item in self.review],
        }
        if include_text:
            document["draft"] = self.text
        return document


def _server_of(config: Config, name: str | None) -> ServerConfig | None:
    if name is not None:
        return config.server_named(name)
    return config.server[0] if len(config.server) == 1 else None


def _vaults_of(server: ServerConfig | None, config: Config) -> tuple[str, ...]:
    """The vaults an existing map names for its apps' secrets."""
    if server is None:
        return ()
    from pgwarden.collect.azure.cloud import cloud_named

    suffix = cloud_named(config.azure.cloud).keyvault_suffix
    where = f"{config.path}: server[name={server.name!r}]"
    names = [parse_secret_ref(a.secret, suffix, where).vault_name for a in server.app if a.secret]
    return tuple(dict.fromkeys(names))


def draft_map(request: InitRequest, *, session: AzureSession | None = None) -> Draft:
    """Connect, collect, read Azure when asked, and draft the tenancy map.

    ``session`` is the Azure session to use (default: DefaultAzureCredential for the
    config's ``[azure]``, opened only when Azure is needed).
    """
    config = load_config(Path(request.config_path)) if request.config_path else Config()
    configured = _server_of(config, request.name)
    source = request.dsn if request.dsn is not None else (configured.dsn if configured else None)
    if source is None:
        raise UsageError("init needs --dsn (or --config naming a server with a dsn)")
    ref = request.azure or (configured.azure if configured else None)
    vaults = request.vaults or _vaults_of(configured, config)
    if session is None and (ref is not None or source.startswith(KEYVAULT_PREFIX)):
        from pgwarden.collect.azure.cloud import open_session

        session = open_session(config.azure)
    dsn = resolve_dsn(source, "--dsn", azure=config.azure, session=session)
    endpoint = endpoint_of(dsn)
    pg = _collect(dsn, config)
    # Re-drafting an existing map keeps its server's name.
    given = request.name or (configured.name if configured else None)
    facts: AzureFacts | None = None
    if ref is not None and session is not None:
        from pgwarden.cli.draft_azure import read_azure_facts

        facts = read_azure_facts(
            session,
            ref,
            given or server_name_of(endpoint),
            vaults=vaults,
            hosts={endpoint.host} if endpoint.host else set(),
            dsn_secret_pattern=config.azure.dsn_secret_pattern,
        )
    arm = facts.server if facts else None
    guess = guess_tenancy(
        pg,
        arm_admin=arm.administrator_login if arm else None,
        arm_server=arm.name if arm else None,
        secrets=facts.secrets if facts else (),
        admin_tools=config.policy.admin_application_names,
    )
    name, named_from = _server_name(given, arm.name if arm else None, endpoint.host)
    review = list(guess.review) + _azure_review(facts)
    if named_from == "its address":
        review.append(
            ReviewItem(
                "low",
                "server-name",
                f"server/{name}",
                "named after its address: pass --name to give it the name people use",
            )
        )
    # Never write a literal DSN (a secret) into the draft: keep only references.
    hint = source if source.startswith((ENV_PREFIX, KEYVAULT_PREFIX)) else DEFAULT_DSN_HINT
    text = render_draft(
        pg,
        guess,
        name=name,
        named_from=named_from,
        dsn_hint=hint,
        azure=_draft_ref(ref, arm, name),
        config=config,
    )
    return Draft(text=text, server_name=name, guess=guess, review=ordered(review))


def _collect(dsn: str, config: Config) -> PostgresSnapshot:
    """The server's catalogs and sessions, sampled as a scan samples them."""
    collector = PostgresCollector(
        dsn,
        session_samples=config.policy.session_samples,
        session_window_seconds=config.policy.session_window_seconds,
        scram_key_reuse=ScramKeyReuse() if config.policy.scram_key_reuse else None,
    )
    try:
        return collector.collect()
    except CollectorError as exc:
        raise ConnectError(str(exc)) from None


def _server_name(given: str | None, arm_name: str | None, host: str | None) -> tuple[str, str]:
    if given:
        return given, "the name given"
    if arm_name:
        return arm_name, "the Azure resource"
    name = server_name_of(Endpoint(host=host))
    if is_address(name):
        return name, "its address"
    return name, "the host's first label"


def _draft_ref(ref: AzureRef | None, arm: AzureServer | None, name: str) -> AzureRef | None:
    """The server's ``azure`` reference as the draft writes it (ARM's resource group)."""
    if ref is None:
        return None
    group = ref.resource_group or (arm.resource_group if arm is not None else None)
    arm_name = ref.server_name or (arm.name if arm is not None else None)
    return AzureRef(
        subscription_id=ref.subscription_id,
        resource_group=group,
        server_name=arm_name if arm_name and arm_name != name else None,
    )


def _azure_review(facts: AzureFacts | None) -> list[ReviewItem]:
    if facts is None:
        return []
    found: list[ReviewItem] = []
    if facts.arm_problem is not None:
        found.append(
            ReviewItem(
                "high",
                "arm-unread",
                "server/azure",
                f"ARM could not be read ({facts.arm_problem}): the admin was guessed from "
                "the server instead",
            )
        )
    found += [
        ReviewItem(
            "medium",
            "vault-unread",
            "server/vaults",
            f"{problem}: DSN secrets there were not weighed",
        )
        for problem in facts.vault_problems
    ]
    return found


def _review_comment(text: str) -> str:
    return f"# REVIEW: {_comment(text)}"


def render_draft(
    pg: PostgresSnapshot,
    guess: TenancyGuess,
    *,
    name: str,
    named_from: str,
    dsn_hint: str,
    azure: AzureRef | None,
    config: Config,
) -> str:
    """The TOML draft: policy, server, apps, each guess with its REVIEW comment."""
    out = [
        "# pgwarden tenancy map, drafted by `pgwarden init`.",
        "# Every REVIEW comment is a guess and its evidence: check it against what the",
        "# owners meant. Access a role has beyond its app is listed, not granted: the",
        "# scan keeps reporting it until the owners decide.",
        "",
        "[policy]",
        f"fail_on = {_toml_string(config.policy.fail_on)}",
        f"min_backup_retention_days = {config.policy.min_backup_retention_days}",
        f"admin_application_names = {_toml_list(config.policy.admin_application_names)}",
    ]
    if azure is not None and (config.azure.cloud != "AzureCloud" or config.azure.arm_endpoint):
        out += ["", "[azure]", f"cloud = {_toml_string(config.azure.cloud)}"]
        if config.azure.arm_endpoint:
            out.append(f"arm_endpoint = {_toml_string(config.azure.arm_endpoint)}")
    out += [
        "",
        "[[server]]",
        f"name = {_toml_string(name)}   {_review_comment(f'named after {named_from}')}",
        f"dsn = {_toml_string(dsn_hint)}",
    ]
    admin = guess.admin
    if admin.role is not None:
        out.append(f"admin_role = {_toml_string(admin.role)}   {_review_comment(admin.evidence)}")
    else:
        out.append(f'# admin_role = "…"   {_review_comment(admin.evidence)}')
    platform = "; ".join(f"{p.role}: {p.why}" for p in guess.platform) or "none found"
    out.append(_review_comment(f"platform roles: {platform}"))
    out.append(f"platform_roles = {_toml_list([p.role for p in guess.platform])}")
    if azure is not None:
        parts = [f"subscription_id = {_toml_string(azure.subscription_id)}"]
        if azure.resource_group:
            parts.append(f"resource_group = {_toml_string(azure.resource_group)}")
        if azure.server_name:
            parts.append(f"server_name = {_toml_string(azure.server_name)}")
        out.append(f"azure = {{ {', '.join(parts)} }}")
    for app in guess.apps:
        out += ["", *_render_app(app)]
    if guess.split:
        out += [
            "",
            "# Roles whose evidence is split between apps (in none; the scan reports them):",
        ]
        out += [f"#   {_comment(s.role)}: {_comment(s.evidence)}" for s in guess.split]
    databases = [db.name for db in app_databases(pg)]
    out += [
        "",
        "# Least-privilege auditor for pgwarden (run as the admin):",
        *(f"#   {_comment(line)}" for line in auditor_sql(databases).splitlines()),
        "",
    ]
    return "\n".join(out)


def _render_app(app: AppGuess) -> list[str]:
    out = [
        "[[server.app]]",
        f"name = {_toml_string(app.name)}   {_review_comment(f'named {app.name_from}')}",
    ]
    if app.grouped_because:
        out.append(_review_comment(f"one app because {first_few(app.grouped_because)}"))
    out.append(f"databases = {_toml_list(app.databases)}")
    if app.roles:
        for member in app.roles:
            out.append(_review_comment(f"{member.role}: {member.evidence}"))
    else:
        out.append(_review_comment("no role shows evidence of working here: add its roles"))
    out.append(f"roles = {_toml_list([r.role for r in app.roles])}")
    if app.identities:
        for identity in app.identities:
            out.append(
                _review_comment(
                    f"{identity.role} is Microsoft Entra service principal "
                    f"{identity.object_id}: {identity.evidence}"
                )
            )
        out.append(f"identities = {_toml_list([i.object_id for i in app.identities])}")
    if app.cross_access:
        out.append(_review_comment("suspected cross-app access, not intent (the scan reports it):"))
        shown = app.cross_access[:CROSS_ACCESS_SHOWN]
        out += [f"#   {_comment(access.describe())}" for access in shown]
        if len(app.cross_access) > len(shown):
            out.append(f"#   … and {len(app.cross_access) - len(shown)} more (see --json)")
    if app.secret is not None:
        out.append(
            f"secret = {_toml_string(app.secret.reference)}   {_review_comment(app.secret.why)}"
        )
    else:
        out.append('# secret = "keyvault:VAULT/SECRET"   # where this app\'s DSN must live')
    return out
