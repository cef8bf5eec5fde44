"""The fault proxies themselves, against the real parts: what a client sees through them."""

from __future__ import annotations

import socket
import ssl
import time
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from tests.fixtures.aws import Group, tagged_groups
from tests.fixtures.faults import (
    AwsFaultProxy,
    access_denied,
    connection_reset,
    delay,
    failed_launch,
    server_error,
    throttle,
)
from tests.fixtures.kube_faults import TcpFaultProxy

NO_RETRY = Config(retries={"total_max_attempts": 1}, read_timeout=5)


@pytest.fixture
def proxy(aws: str) -> Any:
    tagged_groups(aws, "p", [Group("g", "m5.large")])
    with AwsFaultProxy(aws) as p:
        yield p


def test_requests_pass_through_and_are_counted_per_operation(proxy):
    asg = boto3.client("autoscaling", endpoint_url=proxy.url, config=NO_RETRY)
    sqs = boto3.client("sqs", endpoint_url=proxy.url, config=NO_RETRY)
    asg.set_desired_capacity(AutoScalingGroupName="g", DesiredCapacity=2)
    (g,) = asg.describe_auto_scaling_groups()["AutoScalingGroups"]
    sqs.create_queue(QueueName="q")
    assert g["DesiredCapacity"] == 2
    assert proxy.count("SetDesiredCapacity") == 1
    assert proxy.count("DescribeAutoScalingGroups") == 1
    assert proxy.count("CreateQueue") == 1  # a JSON-protocol call, by its X-Amz-Target


@pytest.mark.parametrize(
    ("fault", "code", "status"),
    [
        (throttle(), "Throttling", 400),
        (server_error(), "ServiceUnavailable", 503),
        (access_denied(), "AccessDenied", 403),
    ],
)
def test_errors_have_the_shape_botocore_parses(proxy, fault, code, status):
    asg = boto3.client("autoscaling", endpoint_url=proxy.url, config=NO_RETRY)
    proxy.add("SetDesiredCapacity", fault, times=1)
    with pytest.raises(ClientError) as raised:
        asg.set_desired_capacity(AutoScalingGroupName="g", DesiredCapacity=1)
    assert raised.value.response["Error"]["Code"] == code
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    asg.set_desired_capacity(AutoScalingGroupName="g", DesiredCapacity=1)  # times=1: spent
    assert proxy.faulted("SetDesiredCapacity") == 1 and proxy.count("SetDesiredCapacity") == 2


def test_ec2_and_sqs_errors_use_their_own_protocols(proxy):
    ec2 = boto3.client("ec2", endpoint_url=proxy.url, config=NO_RETRY)
    sqs = boto3.client("sqs", endpoint_url=proxy.url, config=NO_RETRY)
    proxy.add("*", throttle())
    with pytest.raises(ClientError) as ec2_error:
        ec2.describe_instances()
    with pytest.raises(ClientError) as sqs_error:
        sqs.list_queues()
    assert ec2_error.value.response["Error"]["Code"] == "RequestLimitExceeded"
    assert sqs_error.value.response["Error"]["Code"] == "ThrottlingException"


def test_a_rule_can_match_one_group(proxy):
    asg = boto3.client("autoscaling", endpoint_url=proxy.url, config=NO_RETRY)
    proxy.add("SetDesiredCapacity", access_denied(), where={"AutoScalingGroupName": "other"})
    asg.set_desired_capacity(AutoScalingGroupName="g", DesiredCapacity=1)
    assert proxy.faulted("SetDesiredCapacity") == 0


def test_a_failed_launch_shows_in_the_scaling_activities(proxy):
    asg = boto3.client("autoscaling", endpoint_url=proxy.url, config=NO_RETRY)
    proxy.add("DescribeScalingActivities", failed_launch())
    (activity,) = asg.describe_scaling_activities(AutoScalingGroupName="g")["Activities"]
    assert activity["StatusCode"] == "Failed" and activity["AutoScalingGroupName"] == "g"
    assert "InsufficientInstanceCapacity" in activity["Description"]


def test_resets_and_delays(proxy):
    asg = boto3.client("autoscaling", endpoint_url=proxy.url, config=NO_RETRY)
    proxy.add("DescribeAutoScalingGroups", connection_reset(), times=1)
    with pytest.raises((ConnectionClosedError, EndpointConnectionError, ConnectionError)):
        asg.describe_auto_scaling_groups()
    proxy.add("DescribeAutoScalingGroups", delay(0.5), times=1)
    started = time.monotonic()
    asg.describe_auto_scaling_groups()
    assert time.monotonic() - started >= 0.5
    assert proxy.held("DescribeAutoScalingGroups") == 0  # answered: no longer held


def test_a_held_request_is_counted_until_it_is_forwarded(proxy):
    quick = Config(retries={"total_max_attempts": 1}, read_timeout=0.5)
    asg = boto3.client("autoscaling", endpoint_url=proxy.url, config=quick)
    proxy.add("SetDesiredCapacity", delay(1.5), times=1)
    with pytest.raises(ReadTimeoutError):
        asg.set_desired_capacity(AutoScalingGroupName="g", DesiredCapacity=3)
    # The client gave up; the proxy still holds the request, and moto has not seen it.
    assert proxy.held("SetDesiredCapacity") == 1
    assert proxy.held("DescribeAutoScalingGroups") == 0
    (g,) = boto3.client("autoscaling", endpoint_url=proxy.url).describe_auto_scaling_groups()[
        "AutoScalingGroups"
    ]
    assert g["DesiredCapacity"] == 0
    deadline = time.monotonic() + 5
    while proxy.held("SetDesiredCapacity") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proxy.held("SetDesiredCapacity") == 0


@pytest.mark.kube
def test_the_tcp_proxy_stalls_cuts_and_restores_connections(kube_env):
    context = ssl.create_default_context(cafile=str(kube_env.ca_file))
    request = (
        f"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {kube_env.token}\r\n\r\n"
    ).encode()

    def ask(conn: ssl.SSLSocket) -> bytes:
        conn.sendall(request)
        return conn.recv(4096)

    def connect(proxy: TcpFaultProxy) -> ssl.SSLSocket:
        raw = socket.create_connection(("127.0.0.1", proxy.port), timeout=1.0)
        return context.wrap_socket(raw, server_hostname="127.0.0.1")

    with TcpFaultProxy.for_url(kube_env.server) as proxy:
        conn = connect(proxy)
        assert ask(conn).startswith(b"HTTP/1.1 200")
        assert proxy.stall(reset_on_send=False) == 1
        conn.sendall(request)
        with pytest.raises(TimeoutError):  # half-open: no answer, no error
            conn.recv(4096)
        proxy.restore()
        assert b"200" in conn.recv(4096)  # what was held flows on
        assert proxy.cut() == 1
        with pytest.raises((ConnectionError, ssl.SSLError, OSError)):
            ask(conn)
            ask(conn)

        # By default a stalled connection the client sends on again is reset, while one
        # that only waits for more (a watch) hears nothing; new connections work.
        waiting, sending = connect(proxy), connect(proxy)
        assert ask(waiting).startswith(b"HTTP/1.1 200")
        assert ask(sending).startswith(b"HTTP/1.1 200")
        assert proxy.stall() == 2
        with pytest.raises(TimeoutError):
            waiting.recv(4096)
        with pytest.raises((ConnectionError, ssl.SSLError, OSError)):
            ask(sending)
            ask(sending)
        assert ask(connect(proxy)).startswith(b"HTTP/1.1 200")

        # Cut with refuse: open connections reset and new ones refused until restore();
        # a plain cut lets the next connection through at once.
        assert proxy.cut(refuse=True) >= 1  # the stalled waiting one at least
        accepted = proxy.accepted
        with pytest.raises((ConnectionError, ssl.SSLError, OSError)):
            ask(connect(proxy))
        assert proxy.accepted == accepted  # refused, not relayed
        proxy.restore()
        assert ask(connect(proxy)).startswith(b"HTTP/1.1 200")
        proxy.cut()
        assert ask(connect(proxy)).startswith(b"HTTP/1.1 200")
