"""Rules that need no network: pages, throttling arithmetic, setting values, addresses, status codes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from services.auth.settings_store import ValueType, check_value, may_read, may_write, parse_value_type
from services.auth.throttle import retry_after
from services.common import errors
from services.common.identity import Caller, Role
from services.common.pagination import MAX_PAGE_SIZE, next_page_token, read_page
from services.common.peer import CLIENT_ADDRESS_HEADER, client_address, parse_networks, peer_ip
from services.common.status import code_for, status_for

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class TestPagination:
    def test_first_page_defaults_to_fifty(self) -> None:
        page = read_page(0, "", {"q": 1})
        assert (page.offset, page.size) == (0, 50)

    def test_page_size_is_capped(self) -> None:
        assert read_page(10_000, "", {}).size == MAX_PAGE_SIZE

    def test_next_token_continues_where_the_page_ended(self) -> None:
        first = read_page(2, "", {"q": 1})
        token = next_page_token(first, 2, has_more=True, query={"q": 1})
        assert read_page(2, token, {"q": 1}).offset == 2

    def test_last_page_has_no_token(self) -> None:
        assert next_page_token(read_page(2, "", {}), 1, has_more=False, query={}) == ""

    def test_token_from_other_filters_is_refused(self) -> None:
        token = next_page_token(read_page(2, "", {"q": 1}), 2, has_more=True, query={"q": 1})
        with pytest.raises(errors.InvalidArgument):
            read_page(2, token, {"q": 2})

    @pytest.mark.parametrize("token", ["garbage", "e30", "!!!"])
    def test_malformed_token_is_refused(self, token: str) -> None:
        with pytest.raises(errors.InvalidArgument):
            read_page(2, token, {})

    def test_negative_page_size_is_refused(self) -> None:
        with pytest.raises(errors.InvalidArgument):
            read_page(-1, "", {})


class TestThrottleArithmetic:
    window = timedelta(minutes=5)

    def test_below_the_limit_is_not_throttled(self) -> None:
        assert retry_after([NOW - timedelta(seconds=10)] * 4, 5, self.window, NOW) is None

    def test_at_the_limit_waits_until_the_oldest_counted_failure_leaves_the_window(self) -> None:
        failures = [NOW - timedelta(seconds=s) for s in (100, 50, 40, 30, 20)]
        assert retry_after(failures, 5, self.window, NOW) == pytest.approx(200)

    def test_failures_outside_the_window_do_not_count(self) -> None:
        failures = [NOW - timedelta(minutes=10)] * 10
        assert retry_after(failures, 5, self.window, NOW) is None


class TestSettingValues:
    @pytest.mark.parametrize(
        ("value", "kind"),
        [
            ("anything", ValueType.STRING),
            ("42", ValueType.INTEGER),
            ("-7", ValueType.INTEGER),
            ("0.5", ValueType.FLOAT),
            ("1e3", ValueType.FLOAT),
            ("true", ValueType.BOOLEAN),
            ("false", ValueType.BOOLEAN),
            ('{"a": [1, 2]}', ValueType.JSON),
            ("null", ValueType.JSON),
        ],
    )
    def test_values_that_parse_as_their_type_are_accepted(self, value: str, kind: ValueType) -> None:
        check_value(value, kind)

    @pytest.mark.parametrize(
        ("value", "kind"),
        [
            ("4.2", ValueType.INTEGER),
            ("twelve", ValueType.INTEGER),
            ("nan", ValueType.FLOAT),
            ("inf", ValueType.FLOAT),
            ("abc", ValueType.FLOAT),
            ("yes", ValueType.BOOLEAN),
            ("True", ValueType.BOOLEAN),
            ("{not json", ValueType.JSON),
        ],
    )
    def test_values_that_do_not_parse_are_refused(self, value: str, kind: ValueType) -> None:
        with pytest.raises(errors.InvalidArgument):
            check_value(value, kind)

    def test_empty_value_type_means_string(self) -> None:
        assert parse_value_type("") is ValueType.STRING

    def test_unknown_value_type_is_refused(self) -> None:
        with pytest.raises(errors.InvalidArgument, match="value_type must be one of"):
            parse_value_type("date")

    def test_only_admins_write_global_settings(self) -> None:
        user = Caller(uuid.uuid4(), Role.EDITOR, "t")
        admin = Caller(uuid.uuid4(), Role.ADMIN, "t")
        assert not may_write(user, None)
        assert may_write(admin, None)
        assert may_write(user, user.user_id)
        assert not may_write(user, admin.user_id)
        viewer = Caller(uuid.uuid4(), Role.VIEWER, "t")
        assert not may_write(viewer, viewer.user_id)
        assert may_read(user, None)
        assert not may_read(user, admin.user_id)


class TestClientAddress:
    trusted = parse_networks("127.0.0.1/32,::1/128")

    def test_peer_strings_are_parsed(self) -> None:
        assert peer_ip("ipv4:10.1.2.3:5000") == "10.1.2.3"
        assert peer_ip("ipv6:%5B::1%5D:5000") == "::1"

    def test_the_gateways_client_address_is_believed_from_a_gateway_network(self) -> None:
        metadata = [(CLIENT_ADDRESS_HEADER, "198.51.100.7")]
        assert client_address("ipv4:127.0.0.1:1", metadata, self.trusted) == "198.51.100.7"

    def test_the_client_address_is_ignored_from_anyone_else(self) -> None:
        metadata = [(CLIENT_ADDRESS_HEADER, "198.51.100.7")]
        assert client_address("ipv4:10.9.9.9:1", metadata, self.trusted) == "10.9.9.9"


class TestStatusMapping:
    @pytest.mark.parametrize(
        ("error", "code"),
        [
            (errors.InvalidArgument("x"), grpc.StatusCode.INVALID_ARGUMENT),
            (errors.NotFound("x"), grpc.StatusCode.NOT_FOUND),
            (errors.AlreadyExists("x"), grpc.StatusCode.ALREADY_EXISTS),
            (errors.PermissionDenied("x"), grpc.StatusCode.PERMISSION_DENIED),
            (errors.Unauthenticated("x"), grpc.StatusCode.UNAUTHENTICATED),
            (errors.FailedPrecondition("x"), grpc.StatusCode.FAILED_PRECONDITION),
            (errors.ResourceExhausted("x", 3), grpc.StatusCode.RESOURCE_EXHAUSTED),
            (errors.Unavailable("x"), grpc.StatusCode.UNAVAILABLE),
        ],
    )
    def test_each_domain_error_has_its_code(self, error: errors.DomainError, code: grpc.StatusCode) -> None:
        assert code_for(error) is code

    def test_throttling_carries_retry_after(self) -> None:
        status = status_for(errors.ResourceExhausted("slow down", 2.2))
        assert ("retry-after", "3") in status.trailing_metadata
        assert status.details == "slow down"


def test_roles_parse_by_name_with_a_clear_error() -> None:
    assert Role.parse("viewer") is Role.VIEWER
    with pytest.raises(ValueError, match="role must be one of admin, editor, viewer"):
        Role.parse("root")
