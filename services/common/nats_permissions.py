"""What each component may publish and subscribe to on NATS, derived from services.common.messaging.

One function (`permissions`) gives each component's allow lists, built from the names messaging.py gives
every stream, subject, consumer and bucket, so the permissions cannot drift from the code. The local stack
renders the nats-server configuration from it (`render_authorization`), and tests/deploy checks that the
Kubernetes NATS configuration is the same rendering. Everything not allowed is denied.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common import job_types, messaging
from services.common.messaging import (
    API_KEYS_BUCKET,
    BUCKET_OWNERS,
    CANCEL_BUCKET,
    CHANGES_PREFIX,
    DISPATCH_STREAM,
    EVENTS_CONSUMER,
    EVENTS_STREAM,
    PROJECTS_CONSUMER,
    PROJECTS_STREAM,
    REVOCATIONS_BUCKET,
    STREAM_OWNERS,
    WORK_QUEUES,
    inbox_prefix,
    kv_stream,
)

# The components, each with a NATS user of its own; `admin` is the operators' (aiorch queue, requeue).
COMPONENTS = ("auth", "projects", "jobs", "workers", "admin")
API = "$JS.API"


@dataclass(frozen=True)
class Permissions:
    """Subjects a user may publish to and subscribe to (NATS wildcards)."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]

    def __post_init__(self) -> None:
        # Listed once each, in the order given (two helpers may name the same subject).
        object.__setattr__(self, "publish", tuple(dict.fromkeys(self.publish)))
        object.__setattr__(self, "subscribe", tuple(dict.fromkeys(self.subscribe)))


def _owned(owner: str) -> list[str]:
    """Create, update and look at the streams and buckets this component owns (messaging.STREAM_OWNERS)."""
    streams = [name for name, who in STREAM_OWNERS.items() if who == owner]
    streams += [kv_stream(bucket) for bucket, who in BUCKET_OWNERS.items() if who == owner]
    return [f"{API}.STREAM.{verb}.{stream}" for stream in streams for verb in ("INFO", "CREATE", "UPDATE")]


def _durable(stream: str, durable: str, filter_subject: str) -> list[str]:
    """Create or bind a durable pull consumer, fetch from it and acknowledge its messages."""
    return [
        f"{API}.CONSUMER.INFO.{stream}.{durable}",
        f"{API}.CONSUMER.CREATE.{stream}.{durable}",
        f"{API}.CONSUMER.CREATE.{stream}.{durable}.{filter_subject}",
        f"{API}.CONSUMER.DURABLE.CREATE.{stream}.{durable}",
        f"{API}.CONSUMER.MSG.NEXT.{stream}.{durable}",
        f"$JS.ACK.{stream}.{durable}.>",
    ]


def _read_bucket(bucket: str, watch: bool) -> list[str]:
    """Read a KV bucket's keys; with `watch`, follow it too (an ordered push consumer of our own)."""
    stream = kv_stream(bucket)
    subjects = [
        f"{API}.STREAM.INFO.{stream}",
        f"{API}.DIRECT.GET.{stream}.$KV.{bucket}.>",
        f"{API}.STREAM.MSG.GET.{stream}",
    ]
    if watch:
        subjects += [
            f"{API}.CONSUMER.CREATE.{stream}",
            f"{API}.CONSUMER.CREATE.{stream}.>",
            f"{API}.CONSUMER.INFO.{stream}.*",
            f"{API}.CONSUMER.DELETE.{stream}.*",
            f"$JS.FC.{stream}.>",
        ]
    return subjects


def _dispatch_subjects() -> str:
    return WORK_QUEUES[DISPATCH_STREAM].removesuffix("*") + ">"


def permissions(component: str) -> Permissions:
    """The allow lists of one component's NATS user. Raises KeyError for an unknown component."""
    inbox = f"{inbox_prefix(component)}.>"
    # Every service checks sessions and API keys against its copies of the two buckets, and reports key uses.
    revocations = (
        *_read_bucket(REVOCATIONS_BUCKET, watch=True),
        *_read_bucket(API_KEYS_BUCKET, watch=True),
        messaging.API_KEY_USED_SUBJECT,
    )
    if component == "admin":
        return Permissions(publish=(">",), subscribe=(">",))
    if component == "auth":
        publish = [*_owned("auth"), *revocations, f"$KV.{REVOCATIONS_BUCKET}.>", f"$KV.{API_KEYS_BUCKET}.>"]
        return Permissions(tuple(publish), (inbox, messaging.API_KEY_USED_SUBJECT))
    if component == "projects":
        events = WORK_QUEUES[PROJECTS_STREAM].removesuffix("*") + ">"
        access = f"{messaging.ACCESS_CHANGES_PREFIX}.*"  # announces access changes (core NATS)
        return Permissions((*_owned("projects"), *revocations, events, access), (inbox,))
    if component == "jobs":
        publish = [
            *_owned("jobs"),
            *revocations,
            _dispatch_subjects(),  # the outbox relay dispatches jobs
            f"$KV.{CANCEL_BUCKET}.>",  # and raises cancel flags
            f"{CHANGES_PREFIX}.>",  # every replica broadcasts stored changes (core NATS)
            *_durable(EVENTS_STREAM, EVENTS_CONSUMER, WORK_QUEUES[EVENTS_STREAM]),
            *_durable(PROJECTS_STREAM, PROJECTS_CONSUMER, messaging.PROJECT_DELETED_SUBJECT),
            # The reaper looks at the oldest unapplied event; queue metrics read the workers' consumers.
            f"{API}.STREAM.MSG.GET.{EVENTS_STREAM}",
            f"{API}.DIRECT.GET.{EVENTS_STREAM}",
            f"{API}.DIRECT.GET.{EVENTS_STREAM}.>",
            f"{API}.CONSUMER.INFO.{DISPATCH_STREAM}.*",
            *_read_bucket(messaging.ENGINE_OFFERS_BUCKET, watch=True),
        ]
        return Permissions(tuple(publish), (inbox, f"{CHANGES_PREFIX}.*", f"{messaging.ACCESS_CHANGES_PREFIX}.*"))
    if component == "workers":
        publish = [
            f"{API}.STREAM.INFO.{DISPATCH_STREAM}",
            f"{API}.STREAM.INFO.{EVENTS_STREAM}",
            *_read_bucket(CANCEL_BUCKET, watch=False),
            WORK_QUEUES[EVENTS_STREAM].removesuffix("*") + ">",
            # Each worker reports what its engines can do (the engine catalog); it reads nothing there.
            f"$KV.{messaging.ENGINE_OFFERS_BUCKET}.>",
            f"{API}.STREAM.INFO.{kv_stream(messaging.ENGINE_OFFERS_BUCKET)}",
        ]
        # Every job type a worker may consume (one durable consumer per type).
        for job_type in job_types.NAMES:
            publish += _durable(
                DISPATCH_STREAM, messaging.worker_consumer(job_type), messaging.dispatch_subject(job_type)
            )
        return Permissions(tuple(publish), (inbox,))
    raise KeyError(f"unknown NATS component {component!r}; expected one of {', '.join(COMPONENTS)}")


def _quoted(subjects: tuple[str, ...]) -> str:
    # Quoted, so that `$JS...` is a subject and not a variable reference of the configuration language.
    return "[" + ", ".join(f'"{s}"' for s in subjects) + "]"


def render_authorization(passwords: dict[str, str]) -> str:
    """The nats-server `authorization` block: one user per component with its permissions.

    `passwords` maps a component to its password as written into the file: a quoted literal (the local
    stack) or a `$VARIABLE` reference the server reads from its environment (Kubernetes Secrets).
    Anonymous connections are refused (no `no_auth_user`).
    """
    users = []
    for component in COMPONENTS:
        allowed = permissions(component)
        users.append(
            f"    {{\n"
            f'      user: "{component}"\n'
            f"      password: {passwords[component]}\n"
            f"      permissions: {{\n"
            f"        publish: {{ allow: {_quoted(allowed.publish)} }}\n"
            f"        subscribe: {{ allow: {_quoted(allowed.subscribe)} }}\n"
            f"      }}\n"
            f"    }}"
        )
    return "authorization {\n  users: [\n" + "\n".join(users) + "\n  ]\n}\n"


def password_variable(component: str) -> str:
    """The nats-server environment variable that carries a component's password (Kubernetes Secrets)."""
    return f"NATS_PASSWORD_{component.upper()}"


def render_for_environment() -> str:
    """The `authorization` block with every password read from nats-server's environment (deploy/k8s)."""
    return render_authorization({c: f"${password_variable(c)}" for c in COMPONENTS})
