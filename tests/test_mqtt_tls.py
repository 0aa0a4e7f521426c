"""Scanners and bridge over TLS to a real Mosquitto (certificates made by the test): the firmware
client wraps its connection with asyncio.open_connection(ssl=...), the bridge uses paho's tls_set.
A client that does not trust the broker's CA is refused."""
import asyncio
import datetime
import ipaddress
import ssl

import pytest

from scanbridge.link.mqtt import start_mqtt_link
from scanbridge.scan import ScanService
from scanbridge_fw import wire
from scanbridge_fw.mqtt_link import MqttSession
from scanbridge_tools.broker import Broker

pytestmark = pytest.mark.skipif(not Broker.available(), reason="mosquitto is not installed")


def _certs(folder):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    now = datetime.datetime.now(datetime.timezone.utc)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("scanbridge test CA")).issuer_name(name("scanbridge test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"ca": folder / "ca.pem", "cert": folder / "server.pem", "key": folder / "server.key"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return {k: str(v) for k, v in paths.items()}


def test_scan_over_tls_and_an_untrusted_broker_is_refused(tmp_path):
    certs = _certs(tmp_path / "certs")
    broker = Broker(tmp_path / "broker", {"dev1": "pw1"}, {"bridge-a": "pwa"}, tls=certs).start()
    try:
        bridge = start_mqtt_link("mqtts://127.0.0.1:%d" % broker.port, ScanService(), site="s",
                                 group="g", username="bridge-a", password="pwa", client_id="bridge-a",
                                 tls={"ca": certs["ca"]})
        trusted = ssl.create_default_context(cafile=certs["ca"])
        untrusted = ssl.create_default_context()  # system CAs only: must not accept our broker

        async def scenario():
            s = MqttSession("dev1", "s", "127.0.0.1", broker.port, password="pw1", ssl=trusted)
            task = asyncio.create_task(s.run())
            await asyncio.wait_for(s.client.up.wait(), 10)
            seq = s.send(wire.SCAN, {"payload": b"over-tls"})
            r = await asyncio.wait_for(s.recv(), 10)
            await s.stop()
            task.cancel()
            bad = MqttSession("dev1", "s", "127.0.0.1", broker.port, password="pw1", ssl=untrusted,
                              backoff=(50, 100))
            task = asyncio.create_task(bad.run())
            for _ in range(200):
                if bad.client.failures:
                    break
                await asyncio.sleep(0.02)
            bad.client.kill()
            task.cancel()
            return seq, r, bad.client.failures, bad.client.last_error, bad.up

        seq, r, failures, err, up = asyncio.run(scenario())
        bridge.stop()
        assert r.seq == seq and r.data["verdict"] == wire.ACCEPTED
        assert failures >= 1 and not up and "CERTIFICATE_VERIFY_FAILED" in err, err
    finally:
        broker.kill()
