"""API keys: shown once, stored as digests, checked in constant time, revocable."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from facegate.cli import main
from facegate.config import Settings
from facegate.errors import BadRequest, NotFound, Unauthorized
from facegate.service.keys import KeyStore, create_key, digest, list_keys, revoke_key
from facegate.store.db import Database
from facegate.store.models import ApiKey


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    return KeyStore(Database.from_settings(Settings(data_dir=tmp_path)))


def test_only_a_digest_of_the_secret_is_stored(store: KeyStore, tmp_path: Path) -> None:
    created = store.create("ops")
    with Database(Settings(data_dir=tmp_path).sqlalchemy_url).reading() as session:
        row = session.scalars(select(ApiKey)).one()
    assert row.secret_sha256 == digest(created.secret) != created.secret
    assert created.secret not in (tmp_path / "facegate.db").read_bytes().decode("latin-1")


def test_authenticate_accepts_the_key_and_nothing_close_to_it(store: KeyStore) -> None:
    created = store.create("ops")
    tenant = store.authenticate(created.secret)
    assert (tenant.key_id, tenant.name) == (created.key_id, "ops")
    near_misses = [
        created.secret[:-1],
        created.secret + "x",
        created.secret.upper(),
        "",
        None,
        f"fg_{created.key_id}_",
        "fg__x",
        "garbage",
    ]
    for attempt in near_misses:
        with pytest.raises(Unauthorized):
            store.authenticate(attempt)


def test_revoked_keys_stop_working_and_show_as_revoked(store: KeyStore) -> None:
    kept, revoked = store.create("kept"), store.create("gone")
    store.revoke(revoked.key_id)
    with pytest.raises(Unauthorized, match="revoked"):
        store.authenticate(revoked.secret)
    assert store.authenticate(kept.secret).key_id == kept.key_id
    states = {info.key_id: info.revoked for info in store.list()}
    assert states == {kept.key_id: False, revoked.key_id: True}
    assert store.active_count() == 1
    with pytest.raises(NotFound):
        store.revoke("no-such-key")


def test_key_names_are_required(store: KeyStore) -> None:
    with pytest.raises(BadRequest):
        store.create("   ")


def test_operator_functions_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(data_dir=tmp_path / "fresh")
    created = create_key(settings, "first")
    assert [k.key_id for k in list_keys(settings)] == [created.key_id]
    revoke_key(settings, created.key_id)
    assert list_keys(settings)[0].revoked

    assert main(["keys", "create", "second", "--data-dir", str(tmp_path / "fresh")]) == 0
    printed = capsys.readouterr().out
    assert "shown only this once" in printed and "fg_" in printed
    assert main(["keys", "list", "--data-dir", str(tmp_path / "fresh")]) == 0
    listing = capsys.readouterr().out
    assert "second\tactive" in listing and "first\trevoked" in listing
    assert "fg_" not in listing  # secrets are never listed
    assert main(["keys", "revoke", "no-such-id", "--data-dir", str(tmp_path / "fresh")]) == 1
    assert "no API key with id 'no-such-id'" in capsys.readouterr().err


def test_ids_never_start_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    from facegate.service import common

    drawn = iter(["-leading-dash-id", "plain_id-ok"])
    monkeypatch.setattr(common.secrets, "token_urlsafe", lambda _n: next(drawn))
    assert common.new_id() == "plain_id-ok"
