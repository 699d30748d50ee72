"""What a job request must satisfy before anything is stored: its type, parameters and input.

Pure functions over the typed parameters and the job-type registry (services/common/job_types.py), so
the rules are tested without a network and every limit is the registry's. The length of every text field
of every request is checked before any handler runs, by the one limits table (services/common/field_limits.py).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from services.common import job_types
from services.common.errors import InvalidArgument
from services.common.job_params import DubbingParams, JobParams
from services.common.job_params_proto import job_type_for
from services.common.job_types import JobTypeSpec


def job_type(name: str) -> JobTypeSpec:
    """The job type called `name`; INVALID_ARGUMENT naming the valid ones."""
    try:
        return job_types.get(name)
    except job_types.UnknownJobType:
        raise InvalidArgument(f"type must be one of {', '.join(job_types.NAMES)}") from None


def check_params(spec: JobTypeSpec, params: JobParams | None) -> JobParams:
    """The parameters, if they are the type's own and usable; INVALID_ARGUMENT otherwise."""
    if params is None:
        raise InvalidArgument(f"params must hold the {spec.params_field} parameters")
    given = job_type_for(params)
    if given != spec:
        raise InvalidArgument(f"params are for {given.name} but the job type is {spec.name}")
    if spec.text_field is not None:
        text: str = getattr(params, spec.text_field)
        if not text.strip():
            raise InvalidArgument("the text to speak is empty")
        if spec.max_text_chars is not None and len(text) > spec.max_text_chars:
            raise InvalidArgument(f"the text is longer than {spec.max_text_chars} characters")
    if isinstance(params, DubbingParams):
        if not params.target_language:
            raise InvalidArgument("dubbing needs a target_language")
        if not 0.0 <= params.original_volume <= 1.0:
            raise InvalidArgument("original_volume must be between 0.0 and 1.0")
    return params


def check_input_url(url: str) -> str:
    """Only absolute http(s) URLs; where they may point is checked by the worker that fetches them."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument("input_url must be an http:// or https:// address")
    return url


def check_inputs(spec: JobTypeSpec, input_file_id: str, input_url: str) -> None:
    """A type that works on an input names exactly one; the others name none."""
    if spec.takes_input:
        if bool(input_file_id) == bool(input_url):
            raise InvalidArgument(f"{spec.name} needs exactly one of input_file_id and input_url")
    elif input_file_id or input_url:
        raise InvalidArgument(f"{spec.name} takes no input file")
