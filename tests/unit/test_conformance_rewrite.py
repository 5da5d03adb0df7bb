"""The rewrite of the SDK's generated tests touches the placeholders and nothing else."""

from __future__ import annotations

from tests.conformance.rewrite import HELPERS_IMPORT, rewrite

KINDS = {"agent", "env", "sesn", "work", "model"}

SOURCE = '''\
class TestAgents:
    def test_method_retrieve_with_all_params(self, client) -> None:
        agent = client.beta.agents.retrieve(
            agent_id="agent_011CZkYpogX7uDKUyvBTophP",
            version=0,
            workspace_id="wrkspc_011CZkZaBF1tNoB5wlCeusgy",
        )

    def test_method_list_with_all_params(self, client) -> None:
        client.beta.agents.versions.with_raw_response.list(agent_id="agent_011CZkYpogX7uDKUyvBTophP", limit=0, page="page")
        client.beta.sessions.list(agent_id="agent_id", agent_version=0, limit=5, page="other")
        client.beta.sessions.create(agent="agent_011CZkYpogX7uDKUyvBTophP", environment_id="env_011CZkZ9X2dpNyB7HsEFoRfW",
            resources=[{"file_id": "file_011CNha8iCJcU1wXNR6q4V8w", "type": "file"}])
        client.beta.agents.update(multiagent={"agents": ["agent_011CZkYqphY8vELVzwCUpqiQ"]}, version=1)

    async def test_work_queue(self, async_client) -> None:
        await async_client.beta.environments.work.with_raw_response.list(environment_id="env_011CZkZ9X2dpNyB7HsEFoRfW", page="page")
        await async_client.beta.environments.work.list(environment_id="")
        await async_client.beta.environments.work.poll(environment_id="env_011CZkZ9X2dpNyB7HsEFoRfW")
        await async_client.beta.environments.work.heartbeat(work_id="work_id", environment_id="env_011CZkZ9X2dpNyB7HsEFoRfW",
            desired_ttl_seconds=0, expected_last_heartbeat="expected_last_heartbeat")
        await async_client.beta.environments.work.heartbeat(work_id="work_id", expected_last_heartbeat="2026-05-01T10:00:00Z", desired_ttl_seconds=5)

    def test_models(self, client) -> None:
        client.beta.models.retrieve(model_id="model_id", betas=["message-batches-2024-09-24"])
        client.beta.models.list(after_id="after_id", before_id="before_id", limit=0)
        client.beta.models.retrieve(model_id="")
'''


def rewritten() -> str:
    return rewrite(SOURCE, KINDS)[0]


def test_placeholder_ids_of_served_kinds_become_real_ids() -> None:
    text = rewritten()
    assert 'agent_id=real_id(\'agent_011CZkYpogX7uDKUyvBTophP\'),' in text
    assert "environment_id=real_id('env_011CZkZ9X2dpNyB7HsEFoRfW')" in text
    assert "\"agents\": [real_id('agent_011CZkYqphY8vELVzwCUpqiQ')]" in text


def test_placeholders_of_kinds_agentry_does_not_serve_stay() -> None:
    text = rewritten()
    assert 'workspace_id="wrkspc_011CZkZaBF1tNoB5wlCeusgy"' in text
    assert '"file_id": "file_011CNha8iCJcU1wXNR6q4V8w"' in text
    assert 'agent_id="agent_id"' in text


def test_values_no_server_accepts_become_valid_ones() -> None:
    text = rewritten()
    assert "            version=1,\n" in text
    assert "limit=1, page=real_page('agents.versions')" in text
    assert "agent_version=1, limit=5, page=\"other\"" in text


def test_a_work_item_spelled_as_its_parameter_is_a_placeholder_too() -> None:
    text = rewritten()
    assert text.count("work_id=real_id('work_id')") == 2
    # Only where Agentry serves the kind (and only work_id: agent_id="agent_id" above stays).
    assert rewrite(SOURCE, KINDS - {"work"})[0].count('work_id="work_id"') == 2


def test_a_first_heartbeat_says_so_and_asks_for_a_lease_of_some_time() -> None:
    text = rewritten()
    assert "desired_ttl_seconds=1, expected_last_heartbeat='NO_HEARTBEAT')" in text
    assert 'expected_last_heartbeat="2026-05-01T10:00:00Z", desired_ttl_seconds=5)' in text


def test_a_call_only_a_worker_may_make_goes_through_the_workers_client() -> None:
    text = rewritten()
    assert (
        "await worker_client(async_client).beta.environments.work.with_raw_response.list("
        "environment_id=real_id('env_011CZkZ9X2dpNyB7HsEFoRfW'), page=real_page('environments.work'))"
    ) in text
    # The SDK refuses an empty id before sending anything: no credential is needed there.
    assert '        await async_client.beta.environments.work.list(environment_id="")\n' in text
    # An API key may poll.
    assert "await async_client.beta.environments.work.poll(" in text


def test_valid_values_stay() -> None:
    assert "multiagent={\"agents\": [real_id('agent_011CZkYqphY8vELVzwCUpqiQ')]}, version=1)" in rewritten()


def test_every_other_byte_and_every_line_number_stays() -> None:
    text, edits = rewrite(SOURCE, KINDS)
    assert text.endswith(HELPERS_IMPORT)
    body = text[: -len(HELPERS_IMPORT)]
    lines = body.splitlines(keepends=True)
    assert len(lines) == len(SOURCE.splitlines())
    # Undo each edit left to right: once the edits before it are undone, an edit sits at
    # its original offset.
    for edit in edits:
        line, new = lines[edit.line - 1].encode(), edit.new.encode()
        assert line[edit.start : edit.start + len(new)] == new
        lines[edit.line - 1] = (line[: edit.start] + edit.old.encode() + line[edit.start + len(new) :]).decode()
    assert "".join(lines) == SOURCE


def test_a_source_without_placeholders_is_unchanged() -> None:
    source = "def test_x(client) -> None:\n    client.beta.models.list(limit=5)\n"
    assert rewrite(source, KINDS) == (source, [])


def test_a_model_and_the_models_cursors_spelled_as_their_parameters_are_real_models() -> None:
    text = rewritten()
    assert "retrieve(model_id=real_id('model_id'), betas=" in text
    assert "list(after_id=real_id('model_after_id'), before_id=real_id('model_before_id'), limit=1)" in text
    assert 'retrieve(model_id="")' in text  # the SDK refuses it before sending: nothing to make
    untouched = rewrite(SOURCE, KINDS - {"model"})[0]
    assert 'model_id="model_id"' in untouched and 'after_id="after_id"' in untouched

VAULT_SOURCE = '''\
def test_vaults(client) -> None:
    client.beta.sessions.create(agent="a", vault_ids=["string"], metadata={"foo": "string"})
    client.beta.vaults.credentials.update(credential_id="c", auth={"type": "mcp_oauth",
        "expires_at": parse_datetime("2019-12-27T18:11:19.117Z")})
    client.beta.vaults.credentials.update(credential_id="c", auth={"expires_at": parse_datetime("2100-01-01T00:00:00Z")})
'''


def test_vault_id_lists_name_real_vaults_and_past_expiries_move_to_the_future() -> None:
    text, edits = rewrite(VAULT_SOURCE, {"vlt"})
    assert "vault_ids=[real_id('vlt_vault_ids')]" in text
    assert 'metadata={"foo": "string"}' in text  # "string" elsewhere stays
    assert "parse_datetime('2099-12-27T18:11:19.117Z')" in text
    assert 'parse_datetime("2100-01-01T00:00:00Z")' in text
    assert len(edits) == 2
    # Without vaults served, a session's vault list stays as shipped.
    assert 'vault_ids=["string"]' in rewrite(VAULT_SOURCE, set())[0]
