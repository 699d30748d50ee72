"""Previous signing keys come from files or from a folder (the optional Secret the manifests mount)."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.auth.keys import generate_key_pair
from services.common.identity import load_public_keys


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes_raw()


def test_an_empty_previous_keys_folder_adds_no_key(tmp_path: Path) -> None:
    generate_key_pair(tmp_path / "current.pem", tmp_path / "current.pub")
    (tmp_path / "previous").mkdir()
    assert len(load_public_keys(tmp_path / "current.pub", str(tmp_path / "previous"))) == 1


def test_every_pem_file_of_a_previous_keys_folder_is_accepted(tmp_path: Path) -> None:
    generate_key_pair(tmp_path / "current.pem", tmp_path / "current.pub")
    folder = tmp_path / "previous"
    old = generate_key_pair(tmp_path / "old.pem", folder / "old.pem")
    older = generate_key_pair(tmp_path / "older.pem", folder / "older.pem")
    # Kubernetes keeps a Secret's real files in dot-folders beside the links: those are not keys.
    (folder / "..data").mkdir()
    keys = load_public_keys(tmp_path / "current.pub", str(folder))
    assert {_raw(k) for k in keys[1:]} == {_raw(old.private.public_key()), _raw(older.private.public_key())}


def test_previous_key_files_are_still_named_one_by_one(tmp_path: Path) -> None:
    generate_key_pair(tmp_path / "current.pem", tmp_path / "current.pub")
    generate_key_pair(tmp_path / "a.pem", tmp_path / "a.pub")
    generate_key_pair(tmp_path / "b.pem", tmp_path / "b.pub")
    assert len(load_public_keys(tmp_path / "current.pub", f"{tmp_path / 'a.pub'}, {tmp_path / 'b.pub'}")) == 3
