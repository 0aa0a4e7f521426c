"""The trust store file and `scanbridge trust`: public keys only, validity, rotation, revocation,
clear errors, atomic saves that a running bridge reloads."""
import json
import os
import time

import pytest

from scanbridge.cli import main as cli
from scanbridge.ledger.sqlite import SQLiteLedger
from scanbridge.tokens.trust import TrustedKey, TrustStore, TrustStoreError, parse_time
from scanbridge.tokens.verify import Verifier
from scanbridge_tools.mint import Issuer


def test_roundtrip_and_times(tmp_path):
    a, b = Issuer.generate("ed25519", "Alpha"), Issuer.generate("p256", "Beta")
    store = TrustStore([a.trusted_key(1_700_000_000, 1_900_000_000), b.trusted_key()])
    path = store.save(str(tmp_path / "t.json"))
    loaded = TrustStore.load(path)
    assert len(loaded) == 2
    ka = loaded.get(a.kid)
    assert (ka.issuer, ka.alg, ka.not_before, ka.not_after) == ("Alpha", a.alg, 1_700_000_000, 1_900_000_000)
    assert loaded.get(b.kid).not_before is None
    doc = json.loads(open(path).read())
    assert doc["format"] == "scanbridge-trust/1" and doc["keys"][0]["not_before"].endswith("Z")
    assert parse_time("2026-01-01T00:00:00Z") == parse_time("2026-01-01T00:00:00") == 1767225600.0


@pytest.mark.parametrize("mutate,reason", [
    (lambda e: e.update(private_key="abc"), "private_key_refused"),
    (lambda e: e.update(kid="xyz"), "trust_store_invalid"),
    (lambda e: e.update(alg="ES256"), "trust_store_invalid"),
    (lambda e: e.update(public_key="-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), "trust_store_invalid"),
    (lambda e: e.update(not_before="2027-01-01T00:00:00Z", not_after="2026-01-01T00:00:00Z"), "trust_store_invalid"),
    (lambda e: e.update(revoked="yes"), "trust_store_invalid"),
    (lambda e: e.update(not_after="next tuesday"), "trust_store_invalid"),
])
def test_bad_entries_are_refused_with_a_reason(mutate, reason):
    entry = Issuer.generate("ed25519").trust_entry()
    mutate(entry)
    with pytest.raises(TrustStoreError) as e:
        TrustStore.from_json(json.dumps({"keys": [entry]}))
    assert e.value.reason == reason


def test_private_key_file_refused(tmp_path):
    issuer = Issuer.generate("p256")
    issuer.save(str(tmp_path / "k.pem"))
    for path in (tmp_path / "k.pem",):
        with pytest.raises(TrustStoreError) as e:
            TrustStore.load(str(path))
        assert e.value.reason == "private_key_refused"
    entry = issuer.trust_entry()
    entry["public_key"] = (tmp_path / "k.pem").read_text()
    with pytest.raises(TrustStoreError) as e:
        TrustStore.from_json(json.dumps([entry]))
    assert e.value.reason == "private_key_refused"


def test_duplicate_kid_missing_file_and_not_json(tmp_path):
    entry = Issuer.generate("ed25519").trust_entry()
    with pytest.raises(TrustStoreError) as e:
        TrustStore.from_json(json.dumps({"keys": [entry, entry]}))
    assert e.value.reason == "duplicate_kid"
    with pytest.raises(TrustStoreError) as e:
        TrustStore.load(str(tmp_path / "none.json"))
    assert e.value.reason == "trust_store_missing"
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(TrustStoreError) as e:
        TrustStore.load(str(tmp_path / "bad.json"))
    assert e.value.reason == "trust_store_invalid"


def test_running_bridge_reloads_a_replaced_file(tmp_path):
    issuer = Issuer.generate("ed25519")
    path = str(tmp_path / "t.json")
    TrustStore([issuer.trusted_key()]).save(path)
    store = TrustStore.load(path)
    store.reload_every_s = 0
    led = SQLiteLedger(":memory:")
    v = Verifier(store, led)
    assert v.check(issuer.mint()).reason == "ok"
    on_disk = TrustStore.load(path)
    on_disk.revoke(issuer.kid, reason="compromised")
    on_disk.save(path)
    assert v.check(issuer.mint()).reason == "revoked"
    with open(path, "w") as f:  # a broken hand edit: old keys stay, the error is visible
        f.write("{broken")
    assert v.check(issuer.mint()).reason == "revoked" and "trust_store_invalid" in store.last_error
    led.close()


def test_trust_cli_add_list_show_revoke(tmp_path, capsys):
    keys = tmp_path / "wallet"
    store = str(tmp_path / "trust.json")
    assert cli(["mint", "keygen", "--dir", str(keys), "--alg", "p256", "--issuer", "Shop Wallet"]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    kid = info["kid"]
    assert cli(["trust", "--store", store, "add", info["trust_entry"]]) == 0
    assert cli(["trust", "--store", store, "add", info["trust_entry"]]) == 1  # same kid twice
    assert "duplicate_kid" in capsys.readouterr().err
    assert cli(["trust", "--store", store, "add", info["private_key"]]) == 1
    assert "private_key_refused" in capsys.readouterr().err
    assert cli(["trust", "--store", store, "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["kid"], r["alg"], r["state"], r["issuer"]) for r in rows] == [(kid, "ES256", "valid", "Shop Wallet")]
    assert cli(["trust", "--store", store, "show", kid]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert "BEGIN PUBLIC KEY" in shown["public_key"] and shown["state"] == "valid"
    assert cli(["trust", "--store", store, "revoke", kid, "--reason", "lost"]) == 0
    assert cli(["trust", "--store", store, "list"]) == 0
    assert "revoked" in capsys.readouterr().out
    assert cli(["trust", "--store", store, "show", "00000000"]) == 1
    assert "unknown_key" in capsys.readouterr().err
    assert cli(["trust", "--store", store, "revoke", "nothex"]) == 1
    loaded = TrustStore.load(store)
    assert loaded.get(bytes.fromhex(kid)).revoked_reason == "lost"
    assert oct(os.stat(store).st_mode & 0o777) == "0o644"


def test_trust_cli_window_override_and_missing_store(tmp_path, capsys):
    issuer = Issuer.generate("ed25519")
    entry = tmp_path / "e.json"
    entry.write_text(json.dumps(issuer.trust_entry()))
    store = str(tmp_path / "sub" / "trust.json")
    assert cli(["trust", "--store", store, "list"]) == 1
    assert "trust_store_missing" in capsys.readouterr().err
    assert cli(["trust", "--store", store, "add", str(entry), "--not-after", "2030-01-01T00:00:00Z"]) == 0
    assert TrustStore.load(store).get(issuer.kid).not_after == parse_time("2030-01-01T00:00:00Z")
    os.environ["SCANBRIDGE_TRUST"] = store
    try:
        assert cli(["trust", "list"]) == 0
        assert issuer.kid.hex() in capsys.readouterr().out
    finally:
        del os.environ["SCANBRIDGE_TRUST"]


def test_bridge_options_build_a_working_decider(tmp_path):
    import argparse
    from scanbridge.scan import ScanEvent
    from scanbridge.tokens.config import add_arguments, decider_from_args
    issuer = Issuer.generate("ed25519")
    TrustStore([issuer.trusted_key()]).save(str(tmp_path / "trust.json"))
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--trust", str(tmp_path / "trust.json"), "--ledger",
                              "sqlite:" + str(tmp_path / "l.db"), "--skew", "5"])
    decide, ledger = decider_from_args(args)
    tok = issuer.mint()
    assert [decide(ScanEvent("d", "virtual", i, tok)).reason for i in range(2)] == ["ok", "replayed"]
    ledger.close()
    args = parser.parse_args(["--trust", str(tmp_path / "missing.json")])
    with pytest.raises(TrustStoreError) as e:
        decider_from_args(args)
    assert e.value.reason == "trust_store_missing"
