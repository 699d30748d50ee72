"""A REST path's bound ids win over the body's: templates from the http rules, checked without a network."""

from __future__ import annotations

import pytest
from aiorch.jobs.v1 import jobs_pb2

from services.auth.throttle import address_key
from services.common import errors
from services.common.path_binding import check_path_binding, compile_template, method_templates

UPDATE_JOB = "/aiorch.jobs.v1.JobService/UpdateJob"


def test_a_template_matches_its_path_with_and_without_a_trailing_slash() -> None:
    template = compile_template("/api/jobs/{id}/cancel")
    assert template.fields == ("id",)
    for path in ("/api/jobs/abc/cancel", "/api/jobs/abc/cancel/"):
        matched = template.pattern.fullmatch(path)
        assert matched is not None
        assert matched.group("v0") == "abc"
    assert template.pattern.fullmatch("/api/jobs/a/b/cancel") is None


def test_update_job_binds_its_id_from_both_of_its_paths() -> None:
    templates = method_templates(UPDATE_JOB)
    assert len(templates) == 2  # patch and put
    assert all(t.fields == ("id",) for t in templates)
    assert method_templates("/aiorch.jobs.v1.JobService/CreateJob") == ()


def test_a_body_id_other_than_the_path_id_is_refused() -> None:
    with pytest.raises(errors.InvalidArgument, match="differs from the path"):
        check_path_binding(UPDATE_JOB, "/api/jobs/A/?x=1", jobs_pb2.UpdateJobRequest(id="B"))


def test_the_same_id_passes_and_a_path_of_another_rule_is_ignored() -> None:
    check_path_binding(UPDATE_JOB, "/api/jobs/A/", jobs_pb2.UpdateJobRequest(id="A"))
    check_path_binding(UPDATE_JOB, "/somewhere/else", jobs_pb2.UpdateJobRequest(id="B"))


def test_login_throttling_keys_ipv6_clients_by_their_64_block() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert address_key("198.51.100.7") == "198.51.100.7"
    assert address_key("not an address") == "not an address"
