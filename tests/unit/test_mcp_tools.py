"""MCP pieces without I/O: the names the model sees, how credentials match a server URL, the
toolset's policies, and the Session's record of MCP calls (at most once)."""

from __future__ import annotations

import re

from eventsourcing.domain import Snapshot

from application.mcp_credentials import normalized_url
from application.runtime.tools import McpTool, Route, mcp_policy, mcp_tool_name, mcp_toolsets, toolbox
from domain.sessions import Session
from tests.unit.test_domain import new_session


def test_mcp_tool_names_are_the_spec_form_or_a_safe_slug_with_a_hash() -> None:
    assert mcp_tool_name("docs", "search_pages") == "mcp__docs__search_pages"
    odd = mcp_tool_name("my docs", "search.pages")
    assert re.fullmatch(r"mcp__my_docs__search_pages_[0-9a-f]{8}", odd)
    assert odd == mcp_tool_name("my docs", "search.pages")  # a function of the pair only
    assert odd != mcp_tool_name("my_docs", "search.pages") != mcp_tool_name("my docs", "search_pages")
    long = mcp_tool_name("server", "t" * 80)
    assert len(long) == 64 and re.fullmatch(r"[A-Za-z0-9_-]+", long)
    assert long != mcp_tool_name("server", "t" * 81)


def test_only_servers_with_a_toolset_are_used_and_the_toolset_sets_each_tools_policy() -> None:
    agent = {
        "mcp_servers": [{"type": "url", "name": "docs", "url": "u1"}, {"type": "url", "name": "idle", "url": "u2"}],
        "tools": [
            {
                "type": "mcp_toolset",
                "mcp_server_name": "docs",
                "configs": [{"name": "drop", "enabled": False}, {"name": "free", "permission_policy": {"type": "always_allow"}}],
            },
            {"type": "mcp_toolset", "mcp_server_name": "missing"},
        ],
    }
    [(server, toolset)] = mcp_toolsets(agent)
    assert server["name"] == "docs"
    assert mcp_policy(toolset, "drop") is None
    assert mcp_policy(toolset, "free") == {"type": "always_allow"}
    assert mcp_policy(toolset, "other") == {"type": "always_ask"}  # the MCP default
    off = {**toolset, "default_config": {"enabled": False}}
    assert mcp_policy(off, "other") is None and mcp_policy(off, "free") is None
    back_on = {**off, "configs": [{"name": "free", "enabled": True}]}
    assert mcp_policy(back_on, "free") == {"type": "always_ask"} and mcp_policy(back_on, "other") is None


def test_a_declared_tool_wins_over_an_mcp_tool_of_the_same_name() -> None:
    custom = {"type": "custom", "name": "mcp__docs__add", "input_schema": {"type": "object"}}
    tools = toolbox({"tools": [custom]}).with_mcp(
        [McpTool("docs", "add", "Adds", {"type": "object"}, {"type": "always_ask"}), McpTool("docs", "sub", "", {}, {"type": "always_allow"})]
    )
    assert [tool["name"] for tool in tools.offered] == ["mcp__docs__add", "mcp__docs__sub"]
    assert tools.route("mcp__docs__add") == Route("custom")
    assert tools.route("mcp__docs__sub") == Route("mcp", {"type": "always_allow"}, "docs", "sub")


def test_credential_urls_match_after_normalization_only() -> None:
    assert normalized_url("HTTPS://Mcp.Example.COM:443/mcp/") == normalized_url("https://mcp.example.com/mcp")
    assert normalized_url("http://h:80/a#frag") == "http://h/a"
    assert normalized_url("http://h:8080/a") != normalized_url("http://h/a")
    assert normalized_url("https://h/a") != normalized_url("https://h/b")  # no host-only match
    assert normalized_url("https://h/a?x=1") != normalized_url("https://h/a?x=2")


def _with_mcp_use(permission: str) -> Session:
    session = new_session()
    session.accept_user_event("user.message", "sevt_1", {"content": []})
    session.start_turn("sevt_2")
    session.begin_request("sevt_span")
    use = {"mcp_server_name": "docs", "name": "add", "input": {"a": 1}, "evaluated_permission": permission}
    session.finish_request("sevt_span", [("agent.mcp_tool_use", "sevt_use", use)], "sevt_end", {}, {}, 0, True)
    return session


def test_an_asked_mcp_call_blocks_until_confirmed_then_is_started_once() -> None:
    session = _with_mcp_use("ask")
    assert session.client_blockers == ["sevt_use"] and not session.wants_turn
    session.check_client_event("user.tool_confirmation", {"tool_use_id": "sevt_use"})
    session.accept_user_event("user.tool_confirmation", "sevt_c", {"tool_use_id": "sevt_use", "result": "allow"})
    assert session.wants_turn and session.confirmations["sevt_use"]["result"] == "allow"
    assert session.mcp_calls["sevt_use"] == {"state": "waiting", "server": "docs", "name": "add", "input": {"a": 1}}
    assert session.start_mcp_calls(["sevt_use"]) == ["sevt_use"]
    assert session.start_mcp_calls(["sevt_use"]) == []  # a second driver gets nothing to start
    assert session.started_mcp_calls == ["sevt_use"]
    session.record("agent.mcp_tool_result", "sevt_r", {"mcp_tool_use_id": "sevt_use", "content": [], "is_error": False})
    assert session.mcp_calls == {} and session.confirmations == {} and session.wants_turn


def test_a_message_drops_an_unconfirmed_mcp_call_but_not_a_started_one() -> None:
    session = _with_mcp_use("ask")
    session.accept_user_event("user.message", "sevt_m", {"content": []})
    assert session.mcp_calls == {} and session.blockers == {}
    started = _with_mcp_use("allow")
    started.start_mcp_calls(["sevt_use"])
    started.accept_user_event("user.message", "sevt_m", {"content": []})
    assert started.started_mcp_calls == ["sevt_use"]


def test_a_v5_snapshot_loads_with_no_mcp_calls() -> None:
    snapshot = Snapshot.take(new_session())
    state = {key: value for key, value in snapshot.state.items() if key != "mcp_calls"}
    state["class_version"] = 5
    old = Snapshot(
        originator_id=snapshot.originator_id,
        originator_version=snapshot.originator_version,
        timestamp=snapshot.timestamp,
        topic=snapshot.topic,
        state=state,
    )
    assert old.mutate(None).mcp_calls == {}  # type: ignore[attr-defined]


def test_two_different_server_tool_pairs_never_share_a_name() -> None:
    pairs = [("a", "b__c"), ("a__b", "c"), ("a_", "_b"), ("a", "__b"), ("_a", "b"), ("a", "_b")]
    names = [mcp_tool_name(server, tool) for server, tool in pairs]
    assert len(set(names)) == len(pairs), names
    assert mcp_tool_name("a", "b__c") == "mcp__a__b__c"  # readable back: server a, tool b__c
    assert mcp_tool_name("my-docs_v2", "search") == "mcp__my-docs_v2__search"


def test_a_refresh_that_fails_in_an_unforeseen_way_is_no_bearer_not_a_failed_turn() -> None:
    from contextlib import contextmanager

    from application.mcp_credentials import Bearer, McpCredentials

    class BrokenLocks:
        @contextmanager
        def holding(self, credential_id: str):  # noqa: ANN202
            raise OverflowError("expires_in out of range")
            yield

    credentials = McpCredentials(None, None, None, None, BrokenLocks())  # type: ignore[arg-type]
    bearer = Bearer("vlt_1", "vcrd_1", "mcp_oauth", "t", None, True, "sealed")
    assert credentials.renewed("default", bearer) is None
